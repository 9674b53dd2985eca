"""Web, app and mini-program events in the standard event schema, one JSONL file per business date.

Visitors are devices; about a quarter of them belong to a known person, who now and then logs in,
registers, submits a form or downloads a white paper with their mobile or email in the payload.
~1 % of lines break the schema in one of five ways and ~0.5 % of events are sent twice.
Lines are built from pre-encoded JSON fragments: a million events take a few seconds.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from fincdp.demo import identifiers as ids
from fincdp.demo import pools as P
from fincdp.demo.crm import planted
from fincdp.demo.timeline import ONLINE, Clock
from fincdp.demo.world import World

SOURCES = ["web", "app", "miniapp"]
# (type, identifies a person, weight within its group)
TYPES = {
    "web": ([("web.view.page", 70), ("web.click.button", 15), ("web.search.product", 8), ("web.view.product", 7)],
            [("web.submit.form", 60), ("web.download.whitepaper", 40)]),
    "app": ([("app.view.screen", 75), ("app.click.banner", 15), ("app.open.notification", 10)],
            [("app.login.account", 80), ("app.register.account", 20)]),
    "miniapp": ([("miniapp.view.page", 80), ("miniapp.share.article", 20)],
                [("miniapp.login.account", 60), ("miniapp.submit.form", 40)]),
}
BROKEN_KINDS = ["missing_event_id", "bad_event_type", "bad_occurred_at", "payload_not_object", "foreign_tenant_event"]
_BAD_TYPES = ["pageview", "web.view", "web.view.page.extra", "Web.View.Page", "web view page", "web..page", ""]
_FIRST_OCTETS = [36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120,
                 121, 122, 123, 124, 125, 175, 180, 182, 183, 202, 210, 211, 218, 219, 220, 221, 222, 223]


@dataclass
class EventChunk:
    name: str                      # the day's file, e.g. events_2026-11-25.jsonl
    first: bool                    # the first chunk of that file
    lines: list[str]
    truth: list[tuple[str, int]]   # (event_id, person) of person-bearing events
    bad: Counter
    generated: int                 # events generated (lines without the re-sent ones)


def _j(value) -> str:
    if type(value) is str and '"' not in value and "\\" not in value:
        return f'"{value}"'  # our pools hold no control characters: quoting is enough
    return json.dumps(value, ensure_ascii=False)


class _Devices:
    def __init__(self, rng: np.random.Generator, world: World, n: int, org_ids: list[str]):
        self.n = n
        self.source = rng.choice(3, n, p=[0.55, 0.2, 0.25])
        ua_pick = rng.integers(0, 1 << 30, n)
        self.ua = [_j(P.UAS[SOURCES[s]][u % len(P.UAS[SOURCES[s]])]) for s, u in zip(self.source, ua_pick)]
        octets = rng.integers(1, 255, (n, 3))
        first = rng.choice(_FIRST_OCTETS, n)
        self.ip = [f"{a}.{b}.{c}.{d}" for a, (b, c, d) in zip(first.tolist(), octets.tolist())]
        self.id = [f"d{x:015x}" for x in rng.integers(0, 1 << 60, n).tolist()]
        self.org_idx = rng.integers(0, len(org_ids), n)
        self.org = [_j(org_ids[o]) for o in self.org_idx.tolist()]
        known = rng.random(n) < 0.25
        crm = rng.random(n) < 0.9
        n_extra = len(world.people) - world.n_crm_people
        person = np.where(crm, rng.integers(0, world.n_crm_people, n),
                          world.n_crm_people + rng.integers(0, max(1, n_extra), n))
        self.person = np.where(known, person, -1)
        w = rng.lognormal(0, 1.0, n)
        self.p = w / w.sum()


def _type_tables():
    """Per (source, known) the type names, cumulative probabilities and identifying flags."""
    tables = {}
    for s, (anon, ident) in TYPES.items():
        for known in (False, True):
            items = [(t, w, False) for t, w in anon]
            if known:  # known visitors identify themselves on ~30 % of their events
                items = [(t, w * 0.7 / sum(x[1] for x in anon), False) for t, w, _ in items] + \
                        [(t, w * 0.3 / sum(x[1] for x in ident), True) for t, w in ident]
            w = np.array([x[1] for x in items], float)
            tables[(s, known)] = ([x[0] for x in items], np.cumsum(w / w.sum()), [x[2] for x in items])
    return tables


def _tails(t: str, site: str) -> list[str]:
    """Every payload body a type can have on one site, as JSON members after device and session."""
    v = [f'"app_version":"3.2.{k}"' for k in range(3)]
    if t in ("web.view.page", "web.view.product"):
        pages = P.WEB_PAGES if t == "web.view.page" else P.WEB_PAGES[1:5]
        return [f',"page":"{p}","url":"{site}{p}","title":"{title}","referrer":"{ref}"'
                for p, title in pages for ref in P.REFERRERS]
    if t == "web.click.button":
        return [f',"page":"{p}","url":"{site}{p}","button":"{b}"' for p, _ in P.WEB_PAGES for b in P.BUTTONS]
    if t == "web.search.product":
        return [f',"page":"/search","url":"{site}/search","keyword":"{k}"' for k in P.SEARCH_WORDS]
    if t == "web.submit.form":
        return [f',"page":"/contact","url":"{site}/contact","form_id":"{f}"' for f in P.FORMS]
    if t == "web.download.whitepaper":
        return [f',"page":"/resources","url":"{site}/resources","whitepaper":"{w}"' for w in P.WHITEPAPERS]
    if t == "app.view.screen":
        return [f',"screen":"{s}",{x}' for s in P.APP_SCREENS for x in v]
    if t == "app.click.banner":
        return [f',"screen":"home","banner_id":"bn_{b:03d}",{x}' for b in range(40) for x in v]
    if t == "app.open.notification":
        return [f',"message_id":"msg_{m:06d}",{x}' for m in range(200) for x in v]
    if t in ("app.login.account", "app.register.account"):
        return [f",{x}" for x in v]
    if t == "miniapp.view.page":
        return [f',"page":"{p}","scene":{sc}' for p in P.MINI_PAGES for sc in (1001, 1089, 1047, 1011)]
    if t == "miniapp.share.article":
        return [f',"page":"pages/article/detail","article_id":"a{a:04d}"' for a in range(500)]
    if t == "miniapp.login.account":
        return [',"page":"pages/index/index"']
    if t == "miniapp.submit.form":
        return [f',"page":"pages/apply/form","form_id":"{f}"' for f in P.FORMS]
    raise ValueError(t)


def _identity(rng: np.random.Generator, world: World, t: str, person: int, r: int) -> str:
    """The identifying fields of a login, registration, form or download, as JSON members."""
    ppl, ent = world.people, world.enterprises
    use_mobile = t.startswith("miniapp") or r // 7 % 10 < 6
    parts = []
    if t.endswith(".login.account") or t.endswith(".register.account"):
        kind = "wechat_phone" if t.startswith("miniapp") else ("mobile" if use_mobile else "email")
        parts.append(f'"login_type":"{kind}"')
    if use_mobile:
        parts.append(f'"mobile":{_j(ids.mobile_variant(rng, ppl.mobile[person], 0.08))}')
    else:
        parts.append(f'"email":{_j(ids.email_variant(rng, ppl.email[person], 0.1))}')
    if t.endswith("submit.form") and r // 70 % 3 == 0:
        e = ppl.ent[person]
        parts.append(f'"name":{_j(ppl.name[person])},"company":{_j(ent.short_name[e])}')
    return "," + ",".join(parts)


CHUNK = 200_000  # events generated, held and written at a time


def build(rng: np.random.Generator, world: World, clock: Clock, tenant_id: str, org_ids: list[str],
          other_tenant: str, site: str, n_total: int) -> Iterator[EventChunk]:
    """Yields each day's file in chunks of at most CHUNK events (the first chunk of a file has
    `first` set, and a day without events still yields one empty chunk)."""
    days = len(clock.dates)
    per_day = [n_total // days + (1 if d < n_total % days else 0) for d in range(days)]
    devices = _Devices(rng, world, max(20, n_total // 12), org_ids)
    tables = _type_tables()
    all_types = sorted({t for names, _, _ in tables.values() for t in names})
    sites = [f"https://{'www' if o == 0 else org}.{site}" for o, org in enumerate(org_ids)]
    # every payload body by (type, org), flattened: body index = offset + r % count
    bodies: list[str] = []
    offsets = np.zeros((len(all_types), len(sites)), np.int64)
    counts = np.zeros((len(all_types), len(sites)), np.int64)
    for ti, t in enumerate(all_types):
        for si, s in enumerate(sites):
            options = _tails(t, s)
            offsets[ti, si], counts[ti, si] = len(bodies), len(options)
            bodies.extend(options)
    type_code = {x: i for i, x in enumerate(all_types)}
    tenant_json = _j(tenant_id)
    org_head = [f'"tenant_id":{tenant_json},"org_id":{_j(o)},"one_id":null,"occurred_at":"' for o in org_ids]
    dev_a = [org_head[o] for o in devices.org_idx.tolist()]
    mid = [f'","source":"{t.split(".")[0]}","type":"{t}' for t in all_types]
    dev_c = [f'","ip":"{devices.ip[d]}","ua":{devices.ua[d]},"payload":{{"device_id":"{devices.id[d]}",'
             f'"session_id":"s{devices.id[d][1:9]}' for d in range(devices.n)]
    id_base = int(rng.integers(0, 1 << 62))
    id_offset = 0

    for day, n_day in enumerate(per_day):
        name = f"events_{clock.iso_dates[day]}.jsonl"
        if n_day == 0:
            yield EventChunk(name, True, [], [], Counter(), 0)
            continue
        sess_names = [f"{day:02d}{k:x}" for k in range(8)]
        t_day = np.sort(clock.times(rng, np.full(n_day, day), ONLINE))
        for start in range(0, n_day, CHUNK):
            t = t_day[start:start + CHUNK]
            n = len(t)
            out = EventChunk(name, start == 0, [], [], Counter(), n)
            eids = _event_ids(id_base + id_offset, n)
            id_offset += n
            dev = rng.choice(devices.n, n, p=devices.p)
            stamps = clock.stamps(t)
            sess = [sess_names[k] for k in ((t - clock.day0).astype(np.int64) // (3 * 3600) - 8 * day).tolist()]
            u = rng.random(n)
            r = rng.integers(0, 1 << 30, n)
            src_idx = devices.source[dev]
            person_of = devices.person[dev]
            type_of = np.zeros(n, np.int64)
            ident_of = np.zeros(n, bool)
            for (src, known), (names, cum, flags) in tables.items():
                mask = (src_idx == SOURCES.index(src)) & ((person_of >= 0) == known)
                k = np.minimum(np.searchsorted(cum, u[mask], side="right"), len(names) - 1)
                type_of[mask] = np.array([type_code[x] for x in names])[k]
                ident_of[mask] = np.array(flags)[k]
            org_of = devices.org_idx[dev]
            body_idx = offsets[type_of, org_of] + r % counts[type_of, org_of]
            body = [bodies[x] for x in body_idx.tolist()]
            r = r.tolist()
            for i in np.flatnonzero(ident_of).tolist():  # logins, registrations, forms, downloads
                person = int(person_of[i])
                body[i] += _identity(rng, world, all_types[type_of[i]], person, r[i])
                out.truth.append((eids[i], person))

            lines = [f'{{"event_id":"{e}",{dev_a[d]}{st}{mid[ti]}{dev_c[d]}{se}"{b}}}}}'
                     for e, d, st, ti, se, b in zip(eids, dev.tolist(), stamps, type_of.tolist(), sess, body)]

            # break ~1 % of anonymous events, each in one of five ways
            anon = np.flatnonzero(~ident_of)
            n_broken = min(len(anon), planted(n, 0.01))
            broken = np.zeros(n, bool)
            if n_broken:
                order = rng.permutation(n_broken)
                for j, i in enumerate(rng.choice(anon, n_broken, replace=False).tolist()):
                    kind = BROKEN_KINDS[int(order[j]) % len(BROKEN_KINDS)]
                    lines[i] = _break(json.loads(lines[i]), kind, r[i], clock.iso_dates[day], other_tenant)
                    out.bad[kind] += 1
                    broken[i] = True

            # the SDK re-sends ~0.5 % of good events: the same line again, a little later
            good = np.flatnonzero(~broken)
            dups = np.sort(rng.choice(good, min(len(good), planted(n, 0.005)), replace=False)).tolist()
            again: dict[int, list[str]] = {}
            for i in dups:
                again.setdefault(int(rng.integers(i, min(n, i + 200))), []).append(lines[i])
            if again:
                merged, prev = [], 0
                for at in sorted(again):
                    merged.extend(lines[prev:at + 1])
                    merged.extend(again[at])
                    prev = at + 1
                lines = merged + lines[prev:]
            out.bad["duplicate_event"] = len(dups)
            out.lines = lines
            yield out


def _event_ids(start: int, n: int) -> list[str]:
    """n distinct random-looking ids: splitmix64's finaliser is a bijection on 64-bit integers,
    so consecutive counters from a random start never collide."""
    z = np.arange(n, dtype=np.uint64) + np.uint64(start)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    hexed = z.astype(">u8").tobytes().hex()
    return ["evt_" + hexed[i:i + 16] for i in range(0, 16 * n, 16)]


def _break(event: dict, kind: str, x: int, date: str, other_tenant: str) -> str:
    if kind == "missing_event_id":
        if x % 4 < 2:
            del event["event_id"]
        else:
            event["event_id"] = None if x % 4 == 2 else ""
    elif kind == "bad_event_type":
        event["type"] = _BAD_TYPES[x % len(_BAD_TYPES)]
    elif kind == "bad_occurred_at":
        event["occurred_at"] = ["2026-13-45T25:61:00+08:00", "yesterday", "", "N/A",
                                f"{date}T24:61:00+08:00", f"{date[:4]}-02-30T10:00:00+08:00"][x % 6]
    elif kind == "payload_not_object":
        event["payload"] = ["page=/home&ref=baidu", ["page", "/home"], None, 42][x % 4]
    else:
        event["tenant_id"] = other_tenant
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
