"""Seeded, realistic Chinese B2B demo data per tenant (layout: docs/demo-data.md).

`generate_tenant` builds a hidden world of enterprises and people, renders it into the CRM, the
tenant's WeCom corp, dropped contact files and web/app events under realistic variations, and
writes the ground truth and a manifest. The same arguments give byte-identical output; the tenant
id is part of the seed, so two tenants never share a random stream.
"""
from __future__ import annotations

import csv
import gc
import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from fincdp.demo import crm as crm_mod
from fincdp.demo import events as events_mod
from fincdp.demo import files as files_mod
from fincdp.demo import wecom as wecom_mod
from fincdp.demo import world as world_mod
from fincdp.demo.timeline import Clock

log = logging.getLogger(__name__)

GENERATOR = "fincdp.demo/1"
GROUND_TRUTH_COLUMNS = ["source", "entity", "source_id", "person_id", "enterprise_id"]
BAD_KINDS = ["invalid_mobile", "invalid_email", "invalid_credit_code", "credit_code_check_failed",
             "credit_code_malformed", *events_mod.BROKEN_KINDS, "duplicate_event", "duplicate_file_row"]


def _seeds(seed: int, tenant_id: str, n: int) -> list[np.random.Generator]:
    """Independent streams per stage, keyed by seed and tenant (so tenants never share people)."""
    key = int.from_bytes(hashlib.sha256(tenant_id.encode()).digest()[:8], "big")
    return [np.random.default_rng(s) for s in np.random.SeedSequence([seed, key]).spawn(n)]


_ENCODER = json.JSONEncoder(ensure_ascii=False)
_BATCH = 50_000


def _jsonl(path: Path, rows: Iterable[Any], mode: str = "w") -> int:
    """One JSON object a line, encoded and written in batches (rows may be a generator)."""
    encode = _ENCODER.encode
    n = 0
    with path.open(mode, encoding="utf-8") as f:
        batch: list[str] = []
        for row in rows:
            batch.append(encode(row))
            if len(batch) == _BATCH:
                f.write("\n".join(batch) + "\n")
                n += len(batch)
                batch = []
        if batch:
            f.write("\n".join(batch) + "\n")
            n += len(batch)
    return n


def _lines(path: Path, lines: list[str], mode: str = "w") -> int:
    with path.open(mode, encoding="utf-8") as f:
        if lines:
            f.write("\n".join(lines) + "\n")
    return len(lines)


class _Truth:
    """ground_truth.csv, written as records are made."""

    def __init__(self, path: Path):
        self._f = path.open("w", encoding="utf-8", newline="")
        self._w = csv.writer(self._f, lineterminator="\n")
        self._w.writerow(GROUND_TRUTH_COLUMNS)
        self.by_source: Counter = Counter()

    def add(self, source: str, entity: str, source_id: str, person_id: str, enterprise_id: str) -> None:
        self._w.writerow((source, entity, source_id, person_id, enterprise_id))
        self.by_source[source] += 1

    def close(self) -> int:
        self._f.close()
        return sum(self.by_source.values())


def _json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _csv(path: Path, columns: list[str], rows: Iterable[Sequence[Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
            n += 1
    return n


def _parquet(path: Path, columns: list[str], rows: list[dict]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in columns})
    pq.write_table(table, path, compression="zstd")
    return len(rows)


def _prepare(root: Path) -> None:
    if root.exists():
        if any(root.iterdir()) and not (root / "manifest.json").exists():
            raise FileExistsError(f"{root} exists and holds no generated data set: not overwriting it")
        shutil.rmtree(root)
    for sub in ("crm", "wecom", "files", "truth"):
        (root / sub).mkdir(parents=True)


def _work(scale: int) -> int:
    return sum(round(scale * w) for w in (1.2, 0.4, 4.0, 0.2, 1.2))


def generate_tenant(out_dir: Path, tenant_id: str, *, org_ids: list[str], corpid: str, corpsecret: str,
                    scale: int = 1000, events_per_contact: float = 10.0, seed: int = 7,
                    business_date: date, days: int = 1, progress: bool = False,
                    other_tenants: Sequence[str] = (), committees: bool = False) -> dict:
    """Write `out_dir/<tenant_id>/` and return its manifest.

    scale: CRM contacts (enterprises ≈ scale/8, leads 0.6·scale, opportunities a quarter of the
    leads, calls 2·scale, events events_per_contact·scale). `other_tenants` names the tenant id
    that the foreign-tenant broken events carry (default "other-tenant"). `committees` also plants
    the buying committee behind each account (fincdp/demo/committee.py; off by default, so the
    default output stays the same).
    """
    # Millions of long-lived dicts and lists, no reference cycles: the cyclic collector would only
    # walk them again and again (at a million contacts that doubles the run time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate_tenant(Path(out_dir), tenant_id, org_ids=org_ids, corpid=corpid, corpsecret=corpsecret,
                                scale=scale, events_per_contact=events_per_contact, seed=seed,
                                business_date=business_date, days=days, progress=progress,
                                other_tenants=other_tenants, committees=committees)
    finally:
        if collecting:
            gc.enable()


def _generate_tenant(out_dir: Path, tenant_id: str, *, org_ids: list[str], corpid: str, corpsecret: str,
                     scale: int, events_per_contact: float, seed: int, business_date: date, days: int,
                     progress: bool, other_tenants: Sequence[str], committees: bool = False) -> dict:
    if scale < 8:
        raise ValueError("scale must be at least 8 contacts")
    if not org_ids:
        raise ValueError("a tenant needs at least one org id")
    root = Path(out_dir) / tenant_id
    clock = Clock(business_date, days)
    r_world, r_wecom, r_crm, r_files, r_events = _seeds(seed, tenant_id, 5)
    n_events = round(events_per_contact * scale)
    bar = None
    if progress:
        from tqdm import tqdm
        # the bar counts records: people and enterprises, WeCom, CRM, files, events, truth
        bar = tqdm(total=_work(scale) + n_events, desc=tenant_id, unit="rec", unit_scale=True)

    started = last = time.perf_counter()

    def tick(n: int = 0, stage: str | None = None) -> None:
        nonlocal last
        if bar is not None:
            bar.update(n)
        if stage:
            now = time.perf_counter()
            log.debug("%s: %s took %.1f s", tenant_id, stage, now - last)
            last = now

    _prepare(root)
    counts: dict[str, int] = {}
    bad: dict[str, dict[str, int]] = {k: {} for k in BAD_KINDS}
    truth = _Truth(root / "ground_truth.csv")

    # ---- the hidden world
    n_dup_contacts = scale // 100
    world = world_mod.build(r_world, scale - n_dup_contacts)
    ent, ppl = world.enterprises, world.people
    tick(round(scale * 1.2), stage="world")

    def person_truth(source: str, source_id: str, p: int) -> None:
        truth.add(source, "person", source_id, ppl.id[p], ent.id[ppl.ent[p]])

    # ---- the firm's WeCom corp
    firm = wecom_mod.build_firm(r_wecom, max(20, scale // 50))
    firm.tag_groups = wecom_mod.corp_tags(r_wecom, clock)
    owner_pick = r_wecom.integers(0, len(firm.sales), len(ent)).tolist()
    owners = [firm.sales[i] for i in owner_pick]  # account owner of each enterprise
    externals = []  # (external_userid, person), for the ground truth after the CRM's records

    def external_records():
        for record, p in wecom_mod.external_contacts(r_wecom, world, firm, owners, clock):
            externals.append((record["external_contact"]["external_userid"], p))
            yield record

    _json(root / "wecom/corp.json", {"corpid": corpid, "corpsecret": corpsecret, "name": firm.name})
    _json(root / "wecom/departments.json", firm.departments)
    counts["wecom/departments.json"] = len(firm.departments)
    counts["wecom/users.jsonl"] = _jsonl(root / "wecom/users.jsonl", firm.users)
    counts["wecom/external_contacts.jsonl"] = _jsonl(root / "wecom/external_contacts.jsonl", external_records())
    _json(root / "wecom/corp_tags.json", firm.tag_groups)
    counts["wecom/corp_tags.json"] = len(firm.tag_groups)
    _json(root / "wecom/tags.json", firm.tags)
    counts["wecom/tags.json"] = len(firm.tags)
    tick(round(scale * 0.4), stage="wecom")

    # ---- CRM
    crm = crm_mod.build(r_crm, world, firm, owners, clock, scale)
    for name in ("enterprises", "contacts", "leads", "opportunities"):
        counts[f"crm/{name}.jsonl"] = _jsonl(root / f"crm/{name}.jsonl", getattr(crm, name))
    counts["crm/calls.jsonl"] = _jsonl(root / "crm/calls.jsonl",
                                       crm_mod.calls(r_crm, world, crm, firm, owners, clock, 2 * scale))
    for kind in ("invalid_credit_code", "credit_code_check_failed", "credit_code_malformed"):
        bad[kind]["crm/enterprises.jsonl"] = crm.bad[kind]
    for kind in ("invalid_mobile", "invalid_email"):
        bad[kind]["crm/contacts.jsonl"] = crm.bad[kind]
    for row, e in zip(crm.enterprises, crm.enterprise_truth):
        truth.add("crm", "enterprise", row["id"], "", ent.id[e])
    for row, p in zip(crm.contacts, crm.contact_truth):
        person_truth("crm", row["id"], p)
    if committees:
        _plant_committees(root, counts, _seeds(seed, tenant_id, 6)[5], world, crm, clock)
    for xid, p in externals:
        person_truth("wecom", xid, p)
    tick(round(scale * 4.0), stage="crm")

    # ---- dropped files
    for day, iso_day in enumerate(clock.iso_dates):
        share = scale / days
        signup = files_mod.contact_file(r_files, world, clock, day, f"contacts_{iso_day}.csv", "SU",
                                        round(share * 0.10), round(share * 0.02), messy=0.4)
        partner = files_mod.contact_file(r_files, world, clock, day, f"contacts_{iso_day}.parquet", "PT",
                                         round(share * 0.05), round(share * 0.005), messy=0.25)
        counts[f"files/{signup.name}"] = _csv(root / "files" / signup.name, files_mod.COLUMNS,
                                              ([r[c] for c in files_mod.COLUMNS] for r in signup.rows))
        counts[f"files/{partner.name}"] = _parquet(root / "files" / partner.name, files_mod.COLUMNS, partner.rows)
        for f in (signup, partner):
            for kind in ("invalid_mobile", "invalid_email", "duplicate_file_row"):
                bad[kind][f"files/{f.name}"] = f.bad[kind]
            for record_id, p in f.truth:
                person_truth("file", f"{f.name}:{record_id}", p)
    tick(round(scale * 0.2), stage="files")

    # ---- events, written chunk by chunk
    others = [t for t in other_tenants if t != tenant_id]
    for chunk in events_mod.build(r_events, world, clock, tenant_id, org_ids,
                                  others[0] if others else "other-tenant", firm.domain, n_events):
        rel = f"files/{chunk.name}"
        if chunk.first:
            counts[rel] = 0
            for kind in (*events_mod.BROKEN_KINDS, "duplicate_event"):
                bad[kind][rel] = 0
        counts[rel] += _lines(root / rel, chunk.lines, "w" if chunk.first else "a")
        for kind, n in chunk.bad.items():
            bad[kind][rel] += n
        for eid, p in chunk.truth:
            person_truth("event", eid, p)
        tick(chunk.generated)
    tick(stage="events")

    # ---- truth and manifest
    counts["ground_truth.csv"] = truth.close()
    counts["truth/people.csv"] = _csv(
        root / "truth/people.csv",
        ["person_id", "enterprise_id", "name", "gender", "birth_date", "mobile", "email", "id_number", "title",
         "seniority", "is_legal_representative", "in_crm"],
        ((ppl.id[i], ent.id[ppl.ent[i]], ppl.name[i], ppl.gender[i], ppl.birth[i], ppl.mobile[i], ppl.email[i],
          ppl.id_number[i], ppl.title[i], ppl.seniority[i], int(ppl.legal_rep[i]), int(ppl.in_crm[i]))
         for i in range(len(ppl))))
    counts["truth/enterprises.csv"] = _csv(
        root / "truth/enterprises.csv",
        ["enterprise_id", "legal_name", "short_name", "credit_code", "industry", "province", "city", "domain",
         "switchboard", "legal_representative_id", "account_owner", "in_crm"],
        ((ent.id[e], ent.legal_name[e], ent.short_name[e], ent.credit_code[e], ent.industry[e],
          ent.city[e].province, ent.city[e].name, ent.domain[e], ent.switchboard[e],
          ppl.id[ent.legal_rep[e]] if ent.legal_rep[e] >= 0 else None, owners[e], int(ent.in_crm[e]))
         for e in range(len(ent))))
    manifest = {
        "generator": GENERATOR,
        "tenant": tenant_id,
        "seed": seed,
        "scale": scale,
        "events_per_contact": events_per_contact,
        "business_dates": clock.iso_dates,
        "org_ids": list(org_ids),
        "corpid": corpid,
        "counts": dict(sorted(counts.items())),
        "truth": {
            "people": len(ppl), "crm_people": world.n_crm_people, "enterprises": len(ent),
            "crm_enterprises": world.n_crm_enterprises, "wecom_members": len(firm.users),
            "ground_truth_by_source": dict(sorted(truth.by_source.items())),
        },
        "bad_records": bad,
        "broken_event_kinds": list(events_mod.BROKEN_KINDS),
        "flags": {"shared_switchboard": {"crm/contacts.jsonl": crm.flags["shared_switchboard"]}},
    }
    _json(root / "manifest.json", manifest)
    tick(round(scale * 1.2), stage="truth")
    log.info("%s: generated in %.1f s", tenant_id, time.perf_counter() - started)
    if bar is not None:
        bar.close()
    return manifest


def _plant_committees(root: Path, counts: dict, rng: np.random.Generator, world, crm, clock: Clock) -> None:
    """The planted buying committees, their extra calls and the customers' own WeCom corps."""
    from fincdp.demo import committee as committee_mod

    planted = committee_mod.plant(rng, world, crm, clock)
    counts["crm/calls.jsonl"] += _jsonl(root / "crm/calls.jsonl", planted.calls, "a")
    counts["truth/committees.csv"] = _csv(root / "truth/committees.csv", ["enterprise_id", "person_id", "role"],
                                          planted.committees)
    counts["truth/contact_windows.csv"] = _csv(
        root / "truth/contact_windows.csv", ["person_id", "weekdays", "hour_start", "hour_end"],
        ((p, ",".join(map(str, d)), h0, h1) for p, (d, h0, h1) in sorted(planted.windows.items())))
    counts["truth/customer_members.csv"] = _csv(root / "truth/customer_members.csv",
                                                ["enterprise_id", "userid", "person_id"], planted.members)
    for eid, (departments, users) in planted.orgs.items():
        folder = root / "customers" / eid / "wecom"
        folder.mkdir(parents=True)
        _json(folder / "corp.json", planted.corps[eid])   # a connected customer corp: its own corpid and secret
        _json(folder / "departments.json", departments)
        counts[f"customers/{eid}/wecom/departments.json"] = len(departments)
        counts[f"customers/{eid}/wecom/users.jsonl"] = _jsonl(folder / "users.jsonl", users)


def generate(out_dir: Path, tenants: list[dict], **kwargs) -> list[dict]:
    """generate_tenant for each {"id", "org_ids", "corpid", "corpsecret"}; returns the manifests.

    Foreign-tenant broken events carry the id of another tenant in the list.
    """
    ids = [t["id"] for t in tenants]
    return [generate_tenant(out_dir, t["id"], org_ids=t["org_ids"], corpid=t["corpid"], corpsecret=t["corpsecret"],
                            other_tenants=ids[i + 1:] + ids[:i], **kwargs)
            for i, t in enumerate(tenants)]
