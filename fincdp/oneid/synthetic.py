"""A generated person file with a known truth, for OneID's tests and benchmark.

Each person appears in one to several records, written as messy sources write them: name typos
(homophones, traditional forms), surname and given name swapped, day and month of birth swapped or
mistyped, missing values, postcodes with a wrong digit or from a move, mobiles in other formats or
replaced, ID numbers with a wrong digit (they then fail GB 11643: weak evidence, not a key). Several
people share names, birth dates and postcodes by chance, as real people do. No column is a clean key.

`person_file(n_records, seed)` returns a pyarrow table: rec_id, surname, given_name, dob, gender, city,
postcode, mobile, idcard, and the truth `person_id` (drop it before resolving). Same arguments, same table.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from fincdp.demo import identifiers as demo_ids
from fincdp.demo import pools as P

_CITY_NAMES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "苏州", "成都", "武汉", "西安", "天津", "重庆",
               "长沙", "郑州", "青岛", "厦门", "宁波", "合肥", "福州", "济南"]


def _swap_day_month(dob: str) -> str:
    y, m, d = dob[:4], dob[4:6], dob[6:]
    return y + d + m if int(d) <= 12 and d != m else dob


def _digit_typo(rng: np.random.Generator, text: str, start: int = 0) -> str:
    i = int(rng.integers(start, len(text)))
    digit = str((int(text[i]) + int(rng.integers(1, 10))) % 10) if text[i].isdigit() else "0"
    return text[:i] + digit + text[i + 1:]


def _name_typo(rng: np.random.Generator, name: str) -> str:
    spots = [i for i, c in enumerate(name) if c in P.TYPOS or c in P.TRADITIONAL]
    if not spots:
        return name
    i = spots[int(rng.integers(len(spots)))]
    c = name[i]
    repl = P.TRADITIONAL[c] if c in P.TRADITIONAL and (c not in P.TYPOS or rng.random() < 0.3) else P.TYPOS[c]
    return name[:i] + repl + name[i + 1:]


def _mobile_format(rng: np.random.Generator, mobile: str) -> str:
    k = int(rng.integers(5))
    if k == 0:
        return "+86 " + mobile[:3] + " " + mobile[3:7] + " " + mobile[7:]
    if k == 1:
        return "0086-" + mobile
    if k == 2:
        return mobile.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return mobile


def person_file(n_records: int, seed: int = 7, *, records_per_person: float = 1.6) -> pa.Table:
    rng = np.random.default_rng(seed)
    n_people = max(1, int(round(n_records / records_per_person)))
    surnames, sp = zip(*P.SURNAMES)
    sp = np.array(sp, float) / sum(sp)
    sur = np.array(surnames, dtype=object)[rng.choice(len(surnames), n_people, p=sp)]
    male = rng.random(n_people) < 0.55
    gm, gf = np.array(P.GIVEN_CHARS_MALE, dtype=object), np.array(P.GIVEN_CHARS_FEMALE, dtype=object)
    c1 = np.where(male, gm[rng.integers(0, len(gm), n_people)], gf[rng.integers(0, len(gf), n_people)])
    c2 = np.where(male, gm[rng.integers(0, len(gm), n_people)], gf[rng.integers(0, len(gf), n_people)])
    two = rng.random(n_people) < 0.75
    given = np.where(two, c1 + c2, c1)
    births = (np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n_people).astype("timedelta64[D]"))
    dob = np.char.replace(np.datetime_as_string(births), "-", "").astype(object)
    city_idx = rng.integers(0, len(_CITY_NAMES), n_people)
    postcode = np.array([f"{100 + c * 37 % 800:03d}{d:03d}" for c, d in
                         zip(city_idx.tolist(), rng.integers(0, 60, n_people).tolist())], dtype=object)
    prefixes = np.array([p for p, _ in P.MOBILE_PREFIXES], dtype=object)
    draws = rng.integers(0, 100_000_000, 2 * n_people + 16)
    _, keep = np.unique(draws, return_index=True)
    suffix = draws[np.sort(keep)][:n_people]            # distinct, in draw order
    mobile = np.array([f"{p}{n:08d}" for p, n in zip(prefixes[rng.integers(0, len(prefixes), n_people)].tolist(),
                                                     suffix.tolist())], dtype=object)
    regions = [r.code for r in P.regions() if not r.code.endswith("00")]
    region = np.array(regions, dtype=object)[rng.integers(0, len(regions), n_people)]
    seq = rng.integers(0, 499, n_people) * 2 + np.where(male, 1, 2)
    idcard = np.array([demo_ids.make_ric(r, b, int(s)) for r, b, s in zip(region.tolist(), dob.tolist(), seq.tolist())],
                      dtype=object)

    # records per person: 1 + geometric, until n_records are made
    extra = rng.geometric(1 / records_per_person, n_people) - 1
    owner = np.repeat(np.arange(n_people), 1 + extra)
    if len(owner) < n_records:
        owner = np.concatenate([owner, rng.integers(0, n_people, n_records - len(owner))])
    owner = rng.permutation(owner[:n_records])
    first = np.zeros(n_records, bool)
    _, first_idx = np.unique(owner, return_index=True)
    first[first_idx] = True

    r = rng.random((n_records, 12))
    out = {k: [] for k in ("rec_id", "surname", "given_name", "dob", "gender", "city", "postcode", "mobile",
                           "idcard", "person_id")}
    width = max(7, len(str(n_records)))
    for i in range(n_records):
        p = int(owner[i])
        u = r[i]
        clean = first[i] and u[11] < 0.5   # half of the first sightings are clean, the rest as messy as any
        s, g, d, pc, mob, idc = sur[p], given[p], dob[p], postcode[p], mobile[p], idcard[p]
        if not clean:
            if u[0] < 0.12:
                g = _name_typo(rng, g) if u[0] < 0.09 else g
                s = _name_typo(rng, s) if u[0] >= 0.06 else s
            if u[1] < 0.03:
                s, g = g, s                                 # swapped fields
            if u[2] < 0.04:
                d = _swap_day_month(d)
            elif u[2] < 0.08:
                d = _digit_typo(rng, d, 2)
            elif u[2] < 0.13:
                d = None
            if u[3] < 0.08:
                pc = _digit_typo(rng, pc, 3)
            elif u[3] < 0.14:
                pc = f"{pc[:3]}{int(rng.integers(0, 60)):03d}"   # moved within the city
            elif u[3] < 0.22:
                pc = None
            if u[4] < 0.45:
                mob = None
            elif u[4] < 0.52:
                mob = "1" + "".join(str(x) for x in rng.integers(0, 10, 10)) if u[4] < 0.49 else mob
                mob = _mobile_format(rng, mob)
            else:
                mob = _mobile_format(rng, mob)
            if u[5] < 0.5:
                idc = None
            elif u[5] < 0.58:
                idc = _digit_typo(rng, idc)                 # now fails its check character (mostly)
            elif u[5] < 0.62:
                idc = idc.lower() if idc.endswith("X") else idc[:6] + " " + idc[6:14] + " " + idc[14:]
        out["rec_id"].append(f"R{i:0{width}d}")
        out["surname"].append(s)
        out["given_name"].append(g)
        out["dob"].append(None if d is None else (f"{d[:4]}-{d[4:6]}-{d[6:]}" if u[6] < 0.8 else d))
        out["gender"].append(None if u[7] < 0.05 else ("M" if male[p] else "F"))
        out["city"].append(None if u[8] < 0.05 else _CITY_NAMES[int(city_idx[p])] + ("市" if u[9] < 0.3 else ""))
        out["postcode"].append(pc)
        out["mobile"].append(mob)
        out["idcard"].append(idc)
        out["person_id"].append(f"P{p:0{width}d}")
    return pa.table(out)
