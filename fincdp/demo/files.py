"""Dropped files: the event sign-up list (CSV) and the partner list (Parquet), one of each per
business date. People type these themselves, so they are the messiest source."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fincdp.demo import identifiers as ids
from fincdp.demo import variants as V
from fincdp.demo.crm import planted
from fincdp.demo.timeline import ONLINE, OFFICE, Clock, iso
from fincdp.demo.world import World

COLUMNS = ["record_id", "name", "mobile", "email", "company", "title", "city", "signed_up_at"]


@dataclass
class ContactFile:
    name: str                          # file name, e.g. contacts_2026-11-25.csv
    rows: list[dict] = field(default_factory=list)
    truth: list[tuple[str, int]] = field(default_factory=list)  # (record_id, person), once per record_id
    bad: Counter = field(default_factory=Counter)


def contact_file(rng: np.random.Generator, world: World, clock: Clock, day: int, name: str, prefix: str,
                 n_known: int, n_new: int, messy: float) -> ContactFile:
    """n_known CRM people and n_new people the CRM does not know, with typed-in variations,
    ~0.5 % invalid mobiles and emails and ~1 % rows exported twice."""
    ent, ppl = world.enterprises, world.people
    n_known = min(n_known, world.n_crm_people)
    n_new = min(n_new, len(ppl) - world.n_crm_people)
    people = np.concatenate([rng.choice(world.n_crm_people, n_known, replace=False),
                             world.n_crm_people + rng.choice(len(ppl) - world.n_crm_people, n_new, replace=False)])
    n = len(people)
    t = np.sort(clock.times(rng, np.full(n, day), ONLINE if prefix == "SU" else OFFICE))
    stamps = iso(t)
    people = people[rng.permutation(n)]
    out = ContactFile(name)
    r = rng.random((n, 6))
    date = clock.dates[day].strftime("%Y%m%d")
    for i, p in enumerate(people.tolist()):
        e = ppl.ent[p]
        city = ent.city[e].name
        row = {
            "record_id": f"{prefix}{date}{i + 1:05d}",
            "name": V.name(rng, ppl.name[p], ppl.dotted[p], 0.03 * messy / 0.4, 0.03),
            "mobile": None if r[i, 0] < 0.03 else ids.mobile_variant(rng, ppl.mobile[p], messy),
            "email": None if r[i, 1] < 0.1 else ids.email_variant(rng, ppl.email[p], messy / 2),
            "company": V.company(rng, ent.legal_name[e], ent.short_name[e], ent.brand[e], (45, 10, 10, 30, 5)),
            "title": None if r[i, 2] < 0.2 else V.title(rng, ppl.title[p], 0.25),
            "city": None if r[i, 3] < 0.2 else (city.removesuffix("市") if r[i, 4] < 0.5 else city),
            "signed_up_at": stamps[i],
        }
        if row["mobile"] is None and row["email"] is None:
            row["mobile"] = ppl.mobile[p]
        out.rows.append(row)
        out.truth.append((row["record_id"], p))

    with_mobile = [i for i, row in enumerate(out.rows) if row["mobile"]]
    bad_m = rng.choice(with_mobile, planted(len(with_mobile), 0.005), replace=False).tolist() if with_mobile else []
    taken = set(bad_m)
    with_email = [i for i, row in enumerate(out.rows) if row["email"] and i not in taken]
    bad_e = rng.choice(with_email, planted(len(with_email), 0.005), replace=False).tolist() if with_email else []
    for i in bad_m:
        out.rows[i]["mobile"] = ids.break_mobile(rng, ppl.mobile[int(people[i])])
        out.bad["invalid_mobile"] += 1
    for i in bad_e:
        out.rows[i]["email"] = ids.break_email(rng, ppl.email[int(people[i])])
        out.bad["invalid_email"] += 1

    # exact duplicate rows (exported twice), of clean rows only, somewhere after the original
    clean = sorted(set(range(n)) - set(bad_m) - set(bad_e))
    dups = sorted(rng.choice(clean, planted(len(clean), 0.01), replace=False).tolist()) if clean else []
    rows = list(out.rows)
    for i in reversed(dups):  # inserting from the back keeps each original ahead of its copy
        rows.insert(int(rng.integers(i + 1, len(out.rows) + 1)), dict(out.rows[i]))
    out.rows = rows
    out.bad["duplicate_file_row"] = len(dups)
    return out
