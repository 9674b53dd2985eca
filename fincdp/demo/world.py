"""The hidden truth behind a tenant's demo data: who the enterprises and people really are.

Every source (CRM, WeCom, files, events) renders records from this world under variations; the
ground truth maps each record back to `person_id` / `enterprise_id` here. Columns are kept as
plain lists (one entry per enterprise or person) so a million people stay cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fincdp.demo import identifiers as ids
from fincdp.demo import pools as P


@dataclass
class Enterprises:
    id: list[str] = field(default_factory=list)
    brand: list[str] = field(default_factory=list)
    short_name: list[str] = field(default_factory=list)   # brand + business word: what people call it
    legal_name: list[str] = field(default_factory=list)   # canonical, full-width brackets
    credit_code: list[str] = field(default_factory=list)  # always valid here; sources may break it
    industry: list[str] = field(default_factory=list)
    city: list[P.City] = field(default_factory=list)
    district: list[str] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    registered_capital: list[str] = field(default_factory=list)
    domain: list[str] = field(default_factory=list)
    switchboard: list[str | None] = field(default_factory=list)
    in_crm: list[bool] = field(default_factory=list)
    members: list[list[int]] = field(default_factory=list)  # person indices
    legal_rep: list[int] = field(default_factory=list)      # person index

    def __len__(self) -> int:
        return len(self.id)


@dataclass
class People:
    id: list[str] = field(default_factory=list)
    ent: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)       # canonical (U+00B7 in dotted names)
    surname: list[str] = field(default_factory=list)
    dotted: list[bool] = field(default_factory=list)
    gender: list[str] = field(default_factory=list)     # M / F
    birth: list[str] = field(default_factory=list)      # YYYYMMDD
    mobile: list[str] = field(default_factory=list)     # 11 digits
    email: list[str] = field(default_factory=list)      # lower case
    id_number: list[str | None] = field(default_factory=list)
    title: list[str] = field(default_factory=list)
    seniority: list[str] = field(default_factory=list)
    legal_rep: list[bool] = field(default_factory=list)
    in_crm: list[bool] = field(default_factory=list)
    english: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.id)


@dataclass
class World:
    enterprises: Enterprises
    people: People
    n_crm_enterprises: int
    n_crm_people: int


def weighted(pairs) -> tuple[list, np.ndarray]:
    items = [p[0] for p in pairs]
    w = np.array([p[1] for p in pairs], dtype=float)
    return items, w / w.sum()


class NameDrawer:
    """Draws Chinese person names with their pinyin, vectorised over numpy."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.surnames, self.surname_p = weighted(P.SURNAMES)

    def draw(self, n: int, gender: np.ndarray) -> tuple[list[str], list[str], list[str], list[list[str]], list[bool]]:
        """Returns names, surnames, surname pinyin, given-name pinyin syllables, dotted flags."""
        rng = self.rng
        sur_idx = rng.choice(len(self.surnames), n, p=self.surname_p)
        style = rng.random(n)  # < .5 Faker given name, < .99 two characters, else a dotted name
        male = P.GIVEN_MALE, P.GIVEN_CHARS_MALE
        female = P.GIVEN_FEMALE, P.GIVEN_CHARS_FEMALE
        pick = rng.integers(0, 1 << 30, (n, 3))
        names, surnames, sur_py, giv_py, dotted = [], [], [], [], []
        for i in range(n):
            given_pool, chars = male if gender[i] == "M" else female
            if style[i] >= 0.99:
                firsts = [d for d in P.DOT_FIRST if d[2] == gender[i]]
                first = firsts[pick[i, 0] % len(firsts)]
                last = P.DOT_LAST[pick[i, 1] % len(P.DOT_LAST)]
                names.append(f"{first[0]}·{last[0]}")
                surnames.append(last[0])
                sur_py.append(last[1])
                giv_py.append([first[1]])
                dotted.append(True)
                continue
            s = self.surnames[sur_idx[i]]
            if style[i] < 0.5:
                g = given_pool[pick[i, 0] % len(given_pool)]
            else:
                a = chars[pick[i, 0] % len(chars)]
                b = chars[pick[i, 1] % len(chars)]
                g = a + b if a != b or pick[i, 2] % 4 == 0 else a
            names.append(s + g)
            surnames.append(s)
            sur_py.append("".join(P.PINYIN[c] for c in s))
            giv_py.append([P.PINYIN[c] for c in g])
            dotted.append(False)
        return names, surnames, sur_py, giv_py, dotted


def unique_mobiles(rng: np.random.Generator, n: int, taken: set[str] | None = None) -> list[str]:
    prefixes, p = weighted(P.MOBILE_PREFIXES)
    taken = set() if taken is None else taken
    out: list[str] = []
    while len(out) < n:
        k = n - len(out)
        pre = rng.choice(len(prefixes), k, p=p)
        rest = rng.integers(0, 10**8, k)
        for a, b in zip(pre, rest):
            m = f"{prefixes[a]}{b:08d}"
            if m in taken or m.startswith("1349"):
                continue
            taken.add(m)
            out.append(m)
    return out


def _email_local(style: int, sur: str, giv: list[str], eng: str | None) -> str:
    g = "".join(giv)
    initials = "".join(x[0] for x in giv)
    if eng and style < 3:
        return f"{eng.lower()}.{sur}" if style < 2 else f"{eng.lower()}{sur[0]}"
    return [f"{sur}{g}", f"{sur}{g}", f"{g}.{sur}", f"{sur}{initials}", f"{sur}_{g}", f"{initials}{sur}",
            f"{sur}.{g}", f"{sur}{g}", f"{sur}{initials}", f"{g}{sur}"][style]


def _emails(rng, sur_py, giv_py, english, domains, birth, taken: set[str]) -> list[str]:
    """Corporate email on the enterprise's domain for ~80 %, free mail for the rest; unique."""
    free, free_p = weighted(P.FREE_MAIL)
    n = len(sur_py)
    corporate = rng.random(n) < 0.8
    free_idx = rng.choice(len(free), n, p=free_p)
    qq = rng.integers(10**5, 10**10, n)
    suffix = rng.integers(1, 999, n)
    use_year = rng.random(n) < 0.5
    style = rng.integers(0, 10, n).tolist()
    out = []
    for i in range(n):
        if domains[i] and corporate[i]:
            local, domain = _email_local(style[i], sur_py[i], giv_py[i], english[i]), domains[i]
        else:
            domain = free[free_idx[i]]
            if domain == "qq.com":
                local = str(qq[i])
            else:
                base = _email_local(style[i], sur_py[i], giv_py[i], None)
                local = base + (birth[i][2:4] if use_year[i] else str(suffix[i]))
        email = f"{local}@{domain}"
        k = 1
        while email in taken:
            k += 1
            email = f"{local}{k}@{domain}"
        taken.add(email)
        out.append(email)
    return out


def _id_numbers(rng: np.random.Generator, births: list[str], genders: list[str], provinces: list[str]) -> list[str]:
    """GB 11643 numbers whose region code was assigned in the birth year (per stdnum's data).

    Half are born in the province the enterprise is in, the rest anywhere.
    """
    regs = [r for r in P.regions() if not r.code.endswith("00")]
    by_prov: dict[str, list[P.Region]] = {}
    for r in regs:
        by_prov.setdefault(r.code[:2], []).append(r)
    n = len(births)
    home = (rng.random(n) < 0.5).tolist()
    tries = rng.integers(0, 1 << 30, (n, 8)).tolist()
    seqs = (rng.integers(0, 499, n) * 2).tolist()
    out = []
    for i in range(n):
        year = int(births[i][:4])
        pool = by_prov[provinces[i]] if home[i] and provinces[i] in by_prov else regs
        for t in tries[i]:
            r = pool[t % len(pool)]
            if P.region_valid(r, year):
                break
        else:
            r = next(x for x in pool + regs if P.region_valid(x, year))
        out.append(ids.make_ric(r.code, births[i], seqs[i] + (1 if genders[i] == "M" else 2)))
    return out


def _births(rng: np.random.Generator, seniority: list[str]) -> list[str]:
    base = {"owner": 1968, "cxo": 1972, "vp": 1975, "director": 1980, "manager": 1985, "senior": 1988, "entry": 1995}
    n = len(seniority)
    years = np.minimum(np.array([base[s] for s in seniority]) + rng.integers(-7, 8, n), 2002)
    days = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]") + rng.integers(0, 365, n)
    return [d.replace("-", "") for d in np.datetime_as_string(days).tolist()]


class _Companies:
    """Draws enterprises in one batch: unique legal names, credit codes, addresses, domains."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.brand_chars = list(P.BRAND_CHARS)
        self.districts: dict[str, list[P.Region]] = {}
        for r in P.regions():
            if r.code.endswith("00") or not r.name or r.name == "市辖区" or r.spans[-1][1] != 9999:
                continue
            self.districts.setdefault(r.code[:4], []).append(r)
        self.names: set[str] = set()
        self.domains: set[str] = set()

    def _brand(self, r: list[int]) -> tuple[str, str | None]:
        """A brand from Faker's company prefixes (15 %) or two or three characters with pinyin."""
        if r[0] % 100 < 15:
            return P.FAKER_BRANDS[r[1] % len(P.FAKER_BRANDS)], None
        k = 2 if r[0] % 100 < 87 else 3
        chars = []
        for x in r[2:5]:
            c = self.brand_chars[x % len(self.brand_chars)]
            if c not in chars and len(chars) < k:
                chars.append(c)
        return "".join(chars), "".join(P.BRAND_CHARS[c] for c in chars)

    def _domain(self, brand_py: str | None, word: str, r: list[int]) -> str:
        tld = ("com", "com", "com.cn", "com.cn", "cn", "net")[r[0] % 6]
        if brand_py is None:  # no pinyin: initials-like letters, as many Chinese firms use
            base = "".join(chr(97 + x % 26) for x in r[2:2 + 2 + r[1] % 3]) + word
        else:
            base = brand_py + (word if r[1] % 10 < 4 else "")
        d = f"{base}.{tld}"
        k = 0
        while d in self.domains:
            d = f"{base}{r[5] % 100 + k}.{tld}"
            k += 1
        self.domains.add(d)
        return d

    def add(self, ent: Enterprises, ids_: list[str], in_crm: list[bool]) -> None:
        rng = self.rng
        n = len(ids_)
        ind_items, ind_p = weighted([(i, i.weight) for i in P.INDUSTRIES])
        city_items, city_p = weighted([(c, c.weight) for c in P.CITIES])
        forms, form_p = weighted(P.NAME_FORMS)
        ind_i = rng.choice(len(ind_items), n, p=ind_p).tolist()
        city_i = rng.choice(len(city_items), n, p=city_p).tolist()
        form_i = rng.choice(len(forms), n, p=form_p).tolist()
        ints = rng.integers(0, 1 << 30, (n, 12)).tolist()
        capital = np.maximum(1, np.round(np.exp(rng.normal(np.log(1e7), 1.2, n)) / 1e5)).astype(np.int64) * 100000
        new_style = (rng.random(n) < 0.4).tolist()
        for i in range(n):
            ind, city, r = ind_items[ind_i[i]], city_items[city_i[i]], ints[i]
            cshort = city.name.removesuffix("市")
            word = ind.words[r[0] % len(ind.words)]
            brand, brand_py = self._brand(r[1:6])
            legal = forms[form_i[i]].format(b=brand, w=word, c=cshort)
            while legal in self.names:  # redraw the brand until the legal name is new
                brand, brand_py = self._brand(rng.integers(0, 1 << 30, 6).tolist())
                legal = forms[form_i[i]].format(b=brand, w=word, c=cshort)
            self.names.add(legal)
            districts = self.districts[city.code]
            district = districts[r[6] % len(districts)]
            road = P.ROADS[r[7] % len(P.ROADS)] + ("路", "大道", "街")[r[7] // 64 % 3]
            building = brand + P.BUILDING_WORDS[r[8] % len(P.BUILDING_WORDS)]
            address = ("" if city.province == city.name else city.province) + city.name + district.name + road \
                + f"{r[9] % 998 + 1}号{building}{r[10] % 39 + 1}层"
            cap = int(capital[i]) * (5 if ("股份" in legal or "集团" in legal) else 1)
            dword = ind.domain_words[r[11] % len(ind.domain_words)]
            ent.id.append(ids_[i])
            ent.brand.append(brand)
            ent.short_name.append(brand + word)
            ent.legal_name.append(legal)
            ent.credit_code.append(ids.make_uscc(rng, district.code, new_style=new_style[i]))
            ent.industry.append(ind.name)
            ent.city.append(city)
            ent.district.append(district.name)
            ent.address.append(address)
            ent.registered_capital.append(f"{cap}.00")
            ent.domain.append(self._domain(brand_py, dword, r[6:12]))
            ent.switchboard.append(None)
            ent.in_crm.append(in_crm[i])
            ent.members.append([])
            ent.legal_rep.append(-1)


def _sizes(rng: np.random.Generator, total: int, n: int, lo: int = 3, hi: int = 15) -> np.ndarray:
    """n group sizes in [lo, hi] summing to total (the bounds give way when total demands it)."""
    p = max(0.0, min(1.0, (total / n - lo) / (hi - lo)))
    sizes = lo + rng.binomial(hi - lo, p, n)
    if total < lo * n or total > hi * n:
        lo, hi = 1, max(hi, -(-total // n))
    sizes = np.clip(sizes, lo, hi)
    diff = total - int(sizes.sum())
    while diff != 0:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(sizes < hi) if diff > 0 else np.flatnonzero(sizes > lo)
        pick = rng.choice(room, min(abs(diff), len(room)), replace=False)
        sizes[pick] += step
        diff -= step * len(pick)
    return sizes


def _titles(rng: np.random.Generator, sizes: np.ndarray) -> list[tuple[str, str]]:
    """Titles for each enterprise's people, enterprise after enterprise. The first of each holds
    the top job (董事长, 总经理 or 总裁) and is the legal representative; CFO-like jobs occur once."""
    levels, p = weighted(P.SENIORITY_WEIGHTS)
    n = int(sizes.sum())
    top = rng.choice(3, len(sizes), p=[0.5, 0.35, 0.15])
    level_idx = rng.choice(len(levels), n, p=p)
    title_idx = rng.integers(0, 1 << 30, n)
    out: list[tuple[str, str]] = []
    k = 0
    for e, size in enumerate(sizes):
        t = P.TOP_TITLES[top[e]]
        out.append((t[0], t[1]))
        used = {t[0]}
        for j in range(1, int(size)):
            level = levels[level_idx[k + j]]
            pool = P.TITLES[level]
            title = pool[title_idx[k + j] % len(pool)][0]
            if title in P.SINGLETON_TITLES and title in used:
                level = "manager"
                title = P.TITLES[level][title_idx[k + j] % len(P.TITLES[level])][0]
            used.add(title)
            out.append((title, level))
        k += int(size)
    return out


def build(rng: np.random.Generator, n_crm_people: int) -> World:
    """Enterprises (≈ n/8 in the CRM, ≈5 % more outside it) and their people.

    People outside the CRM (≈3 % of n) show up only in files and events: half at CRM
    enterprises, half at enterprises the CRM does not know.
    """
    ent = Enterprises()
    companies = _Companies(rng)
    n_crm_ent = max(1, round(n_crm_people / 8))
    n_extra_ent = max(1, round(n_crm_ent * 0.05))
    width_e = max(5, len(str(n_crm_ent + n_extra_ent)))
    total_ent = n_crm_ent + n_extra_ent
    companies.add(ent, [f"E{i + 1:0{width_e}d}" for i in range(total_ent)], [i < n_crm_ent for i in range(total_ent)])

    sizes = _sizes(rng, n_crm_people, n_crm_ent)
    n_extra = max(n_extra_ent + 1, round(n_crm_people * 0.03))
    extra_ent = np.where(rng.random(n_extra) < 0.5, rng.integers(0, n_crm_ent, n_extra),
                         rng.integers(n_crm_ent, n_crm_ent + n_extra_ent, n_extra))
    extra_ent[:n_extra_ent] = np.arange(n_crm_ent, n_crm_ent + n_extra_ent)  # each has someone
    owner = np.concatenate([np.repeat(np.arange(n_crm_ent), sizes), extra_ent]).astype(int)
    n = len(owner)

    titles = _titles(rng, sizes)
    legal = np.zeros(n, bool)
    legal[np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)] = True
    levels, p = weighted(P.SENIORITY_WEIGHTS)
    for level, t in zip(rng.choice(len(levels), n_extra, p=p), rng.integers(0, 1 << 30, n_extra)):
        pool = P.TITLES[levels[level]]
        titles.append((pool[t % len(pool)][0], levels[level]))
    # enterprises outside the CRM: the first person found there is the legal representative
    outside, first = np.unique(owner[n_crm_people:], return_index=True)
    legal[n_crm_people + first[outside >= n_crm_ent]] = True

    gender = np.where(rng.random(n) < 0.62, "M", "F")
    names, surnames, sur_py, giv_py, dotted = NameDrawer(rng).draw(n, gender)
    seniority = [t[1] for t in titles]
    births = _births(rng, seniority)
    english = [P.ENGLISH_NAMES[int(i) % 10 + (0 if g == "M" else 10)] if r < 0.12 else None
               for i, g, r in zip(rng.integers(0, 100, n), gender, rng.random(n))]
    domains = [ent.domain[e] for e in owner]
    emails = _emails(rng, sur_py, giv_py, english, domains, births, set())
    mobiles = unique_mobiles(rng, n)
    has_id = rng.random(n) < 0.2
    provinces = [ent.city[e].code[:2] for e in owner]
    id_idx = np.flatnonzero(has_id)
    id_vals = _id_numbers(rng, [births[i] for i in id_idx], [str(gender[i]) for i in id_idx],
                          [provinces[i] for i in id_idx])
    id_numbers: list[str | None] = [None] * n
    for i, v in zip(id_idx, id_vals):
        id_numbers[int(i)] = v

    width_p = max(6, len(str(n)))
    people = People(
        id=[f"P{i + 1:0{width_p}d}" for i in range(n)], ent=owner.tolist(), name=names, surname=surnames,
        dotted=dotted, gender=gender.tolist(), birth=births, mobile=mobiles, email=emails, id_number=id_numbers,
        title=[t[0] for t in titles], seniority=seniority, legal_rep=legal.tolist(),
        in_crm=[i < n_crm_people for i in range(n)], english=english,
    )
    for i, e in enumerate(owner):
        ent.members[e].append(i)
        if legal[i]:
            ent.legal_rep[e] = i

    # a switchboard number that several contacts of ~2 % of CRM enterprises give instead of a mobile
    eligible = [e for e in range(n_crm_ent) if len(ent.members[e]) >= 3]
    k = min(len(eligible), max(1, round(n_crm_ent * 0.02)))
    taken: set[str] = set()
    for e in sorted(int(x) for x in rng.choice(eligible, k, replace=False)):
        city = ent.city[e]
        while True:
            local = str(int(rng.integers(5, 9))) + "".join(str(int(d)) for d in rng.integers(0, 10, city.local_digits - 1))
            number = f"{city.area_code}-{local}"
            if number not in taken:
                break
        taken.add(number)
        ent.switchboard[e] = number
    return World(ent, people, n_crm_ent, n_crm_people)
