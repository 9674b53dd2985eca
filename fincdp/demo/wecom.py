"""The tenant's own WeCom corp: departments, members, customer tags, and the external contacts
(customers) its members follow, in the shapes of the WeCom server API (domain-notes 1.3-1.7)."""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from fincdp.demo import identifiers as ids
from fincdp.demo import pools as P
from fincdp.demo import variants as V
from fincdp.demo.timeline import Clock, epoch
from fincdp.demo.world import World, NameDrawer, weighted

_B62 = string.ascii_letters + string.digits


@dataclass
class Firm:
    name: str
    domain: str
    departments: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    sales: list[str] = field(default_factory=list)     # active sales members (leaders excluded)
    service: list[str] = field(default_factory=list)   # active service members
    inactive: list[str] = field(default_factory=list)  # left, disabled or not activated
    tag_groups: list[dict] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)     # employee tags (tag/list, tag/get)


def _firm_name(rng: np.random.Generator) -> tuple[str, str]:
    chars = list(P.BRAND_CHARS)
    a, b = (chars[int(i)] for i in rng.choice(len(chars), 2, replace=False))
    word = P.FIRM_WORDS[int(rng.integers(len(P.FIRM_WORDS)))]
    return f"{a}{b}{word}有限公司", P.BRAND_CHARS[a] + P.BRAND_CHARS[b]


def _split(total: int, k: int) -> list[int]:
    base, extra = divmod(total, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def _tree(n_members: int, firm_name: str) -> list[dict]:
    """Departments with member budgets: each department has one leader, leaves hold the rest.

    Root (1) > 销售中心 > 大区 > 城市团队, 客户服务中心 > 客服组, 市场部: two to four levels,
    depending on how many members there are.
    """
    depts: list[dict] = []

    def add(name: str, name_en: str, parent: int, kind: str, budget: int) -> dict:
        d = {"id": len(depts) + 1, "name": name, "name_en": name_en, "parentid": parent, "kind": kind,
             "budget": budget, "children": []}
        depts.append(d)
        if parent:
            depts[parent - 1]["children"].append(d["id"])
        return d

    rest = n_members - 1
    n_sales = max(3, round(rest * 0.65))
    n_service = max(2, round(rest * 0.25))
    n_mkt = max(1, rest - n_sales - n_service)
    n_sales = rest - n_service - n_mkt
    root = add(firm_name, "Head Office", 0, "root", 1)
    sales = add("销售中心", "Sales Center", root["id"], "sales", n_sales)
    service = add("客户服务中心", "Customer Service Center", root["id"], "service", n_service)
    add("市场部", "Marketing", root["id"], "marketing", n_mkt)

    regions = list(P.SALES_REGIONS.items())
    k = min(len(regions), max(2, (n_sales - 1) // 25)) if n_sales >= 8 else 0
    if k:
        sales["budget"] = 1
        for (rname, (ren, cities)), budget in zip(regions, _split(n_sales - 1, k)):
            region = add(f"{rname}区", ren, sales["id"], "region", budget)
            teams = min(2 * len(cities), (budget - 1) // 10) if budget >= 14 else 0
            if teams:
                region["budget"] = 1
                for t, tb in enumerate(_split(budget - 1, teams)):
                    city = cities[t % len(cities)]
                    nth = P.CN_NUMERALS[t // len(cities)]
                    add(f"{city}销售{nth}部", f"{city} Sales {t // len(cities) + 1}", region["id"], "sales_team", tb)
    teams = min(20, (n_service - 1) // 10) if n_service >= 14 else 0
    if teams:
        service["budget"] = 1
        for t, tb in enumerate(_split(n_service - 1, teams)):
            label = P.CN_NUMERALS[t] if t < 10 else str(t + 1)
            add(f"客服{label}组", f"Service Team {t + 1}", service["id"], "service_team", tb)
    return depts


def build_firm(rng: np.random.Generator, n_members: int) -> Firm:
    name, brand_py = _firm_name(rng)
    firm = Firm(name=name, domain=f"{brand_py}fin.com")
    depts = _tree(n_members, name)
    n = sum(d["budget"] for d in depts)
    gender = np.where(rng.random(n) < 0.55, "M", "F")
    names, _, sur_py, giv_py, _ = NameDrawer(rng).draw(n, gender)
    camel = rng.random() < 0.3
    seen: dict[str, int] = {}
    userids = []
    for s, g in zip(sur_py, giv_py):
        base = s.capitalize() + "".join(g).capitalize() if camel else s + "".join(g)
        seen[base] = seen.get(base, 0) + 1
        userids.append(base if seen[base] == 1 else f"{base}{seen[base]}")

    kind_of = {d["id"]: d["kind"] for d in depts}
    area = {"root": "root", "sales": "sales", "region": "sales", "sales_team": "sales", "service": "service",
            "service_team": "service", "marketing": "marketing"}
    leader: dict[int, int] = {}
    members: list[tuple[int, int]] = []  # (person, main department)
    k = 0
    for d in depts:  # leader first, then the leaf's members
        leader[d["id"]] = k
        members.append((k, d["id"]))
        k += 1
        for _ in range(d["budget"] - 1):
            members.append((k, d["id"]))
            k += 1
    leaves = [d["id"] for d in depts if not d["children"] and d["kind"] != "root"]
    status_draw = rng.choice([1, 5, 4, 2], n, p=[0.9, 0.06, 0.02, 0.02])
    second_draw = rng.random(n)
    pos_draw = rng.random(n)
    alias_draw = rng.integers(0, 100, n)

    for person, main in members:
        is_leader = leader[main] == person
        kind = kind_of[main]
        if is_leader:
            position = P.LEADER_POSITIONS[kind]
        else:
            items, p = weighted(P.MEMBER_POSITIONS[area[kind]])
            position = items[int(np.searchsorted(np.cumsum(p), pos_draw[person] * 0.999999))]
        departments, is_leader_in, direct = [main], [1 if is_leader else 0], []
        parent = depts[main - 1]["parentid"]
        if is_leader:
            if parent:
                direct.append(userids[leader[parent]])
        else:
            direct.append(userids[leader[main]])
            if second_draw[person] < 0.08 and len(leaves) > 1:
                other = leaves[int(alias_draw[person]) % len(leaves)]
                if other != main:
                    departments.append(other)
                    is_leader_in.append(0)
                    if second_draw[person] < 0.02 and userids[leader[other]] not in direct:
                        direct.append(userids[leader[other]])
        status = 1 if is_leader else int(status_draw[person])
        user = {
            "userid": userids[person], "name": names[person], "department": departments,
            "order": [0] * len(departments), "position": position, "is_leader_in_dept": is_leader_in,
            "direct_leader": direct, "main_department": main, "status": status,
            "alias": P.ENGLISH_NAMES[int(alias_draw[person]) % 20] if alias_draw[person] < 20 else "",
        }
        firm.users.append(user)
        if status != 1:
            firm.inactive.append(userids[person])
        elif not is_leader and area[kind] == "sales":
            firm.sales.append(userids[person])
        elif area[kind] == "service":
            firm.service.append(userids[person])
    if not firm.sales:  # tiny corps: the sales leaders sell themselves
        firm.sales = [u["userid"] for u in firm.users if area[kind_of[u["main_department"]]] == "sales"]
    if not firm.service:
        firm.service = list(firm.sales)

    firm.tags = _employee_tags(rng, firm, depts, leader)
    for i, d in enumerate(depts):
        firm.departments.append({"id": d["id"], "name": d["name"], "name_en": d["name_en"],
                                 "department_leader": [userids[leader[d["id"]]]], "parentid": d["parentid"],
                                 "order": 100000000 - i * 1000})
    return firm


def _employee_tags(rng: np.random.Generator, firm: Firm, depts: list[dict], leader: dict[int, int]) -> list[dict]:
    """tag/get shape: who leads, who holds a licence, who is new; service desks tagged by department."""
    users = firm.users
    by_id = {u["userid"]: u for u in users}
    leaders = [users[i]["userid"] for i in sorted(set(leader.values()))]
    sales = firm.sales
    in_sales = set(sales)
    pool = sales + [u for u in firm.service if u not in in_sales]
    licensed = [sales[i] for i in sorted(rng.choice(len(sales), min(len(sales), max(1, len(sales) // 3)),
                                                    replace=False).tolist())]
    newcomers = [pool[i] for i in sorted(rng.choice(len(pool), max(1, len(pool) // 10), replace=False).tolist())]
    service = [d["id"] for d in depts if d["kind"] in ("service", "service_team")]

    def members(ids: list[str]) -> list[dict]:
        return [{"userid": u, "name": by_id[u]["name"]} for u in ids]

    return [
        {"tagid": 1, "tagname": "管理层", "userlist": members(leaders), "partylist": []},
        {"tagid": 2, "tagname": "持证客户经理", "userlist": members(licensed), "partylist": []},
        {"tagid": 3, "tagname": "新员工", "userlist": members(newcomers), "partylist": []},
        {"tagid": 4, "tagname": "客服坐席", "userlist": [], "partylist": service[:1]},
    ]


def _tag_id(rng: np.random.Generator, n: int = 22) -> str:
    return "et" + "".join(_B62[int(i)] for i in rng.integers(0, 62, n))


def corp_tags(rng: np.random.Generator, clock: Clock) -> list[dict]:
    """get_corp_tag_list shape: 客户等级, 客户阶段, 关注产品."""
    created = epoch(clock.before(rng, np.array([clock.day0] * len(P.CORP_TAG_GROUPS)), 900))
    groups = []
    for gi, (gname, tags) in enumerate(P.CORP_TAG_GROUPS):
        groups.append({
            "group_id": _tag_id(rng), "group_name": gname, "create_time": created[gi],
            "order": len(P.CORP_TAG_GROUPS) - gi, "deleted": False,
            "tag": [{"id": _tag_id(rng), "name": t, "create_time": created[gi] + 60 * ti,
                     "order": len(tags) - ti, "deleted": False} for ti, t in enumerate(tags)],
        })
    return groups


def _nickname(rng: np.random.Generator, surname: str) -> str:
    pool = [f"老{surname}", "阳光", "海阔天空", "静待花开", "Sunny", "A-财务", "知足常乐", "简单", f"{surname}-采购"]
    return pool[int(rng.integers(len(pool)))]


def _random_ids(rng: np.random.Generator, n: int, length: int, taken: set[str], prefix: str) -> list[str]:
    alphabet = np.frombuffer(_B62.encode(), np.uint8)
    out: list[str] = []
    while len(out) < n:
        codes = alphabet[rng.integers(0, 62, (n - len(out), length))]
        for row in codes:
            x = prefix + row.tobytes().decode()
            if x not in taken:
                taken.add(x)
                out.append(x)
    return out


def external_contacts(rng: np.random.Generator, world: World, firm: Firm, owners: list[str],
                      clock: Clock) -> Iterator[tuple[dict, int]]:
    """~40 % of the CRM's people as external contacts, each followed by 1-3 members, in the order
    they were first added. Yields (externalcontact/get record, person index), made as consumed."""
    ent, ppl = world.enterprises, world.people
    n = round(world.n_crm_people * 0.4)
    chosen = np.sort(rng.choice(world.n_crm_people, n, replace=False)).tolist()
    xids = _random_ids(rng, n, 30, set(), "wm")
    unionids = _random_ids(rng, n, 27, set(), "o")
    followers = firm.sales + firm.service
    end = clock.day0 + np.timedelta64(len(clock.dates) * 86400 - 1, "s")
    created = np.array(epoch(clock.before(rng, np.full(n * 3, end), 1000))).reshape(n, 3)
    created[:, 1:] = np.maximum(created[:, 1:], created[:, :1])  # the first follower added them first
    n_follow = (1 + rng.choice(3, n, p=[0.6, 0.3, 0.1])).tolist()
    extra = rng.integers(0, len(followers), (n, 4)).tolist()
    r = rng.random((n, 8)).tolist()
    f = rng.random((n, 3, 8)).tolist()
    remark_kind = rng.choice(5, (n, 3), p=[0.3, 0.3, 0.2, 0.1, 0.1]).tolist()
    add_ways = rng.choice([1, 2, 3, 4, 5, 201, 202], (n, 3), p=[0.35, 0.2, 0.15, 0.1, 0.05, 0.1, 0.05]).tolist()
    picks = rng.integers(0, 1 << 30, (n, 3, 4)).tolist()
    for i in np.argsort(created[:, 0], kind="stable").tolist():  # the order they were first added
        person = chosen[i]
        e = ppl.ent[person]
        xid = xids[i]
        ri = r[i]
        gender = 0 if ri[0] < 0.05 else (1 if ppl.gender[person] == "M" else 2)
        if ri[1] < 0.1:  # type 1: a personal WeChat account, named as the person likes
            shown = (V.name(rng, ppl.name[person], ppl.dotted[person], 0.02, 0.05) if ri[2] < 0.6
                     else (ppl.english[person] or "") + ppl.surname[person] if ri[2] < 0.8
                     else _nickname(rng, ppl.surname[person]))
            contact = {"external_userid": xid, "name": shown or ppl.name[person], "type": 1, "gender": gender,
                       "unionid": unionids[i]}
        else:
            shown = V.name(rng, ppl.name[person], ppl.dotted[person], 0.03, 0.03)
            if ppl.english[person] and ri[3] < 0.3:
                shown = f"{shown} {ppl.english[person]}"
            full = ent.legal_name[e]
            if "（" in full and ri[4] < 0.3:
                full = V.half_width(full)
            contact = {"external_userid": xid, "name": shown, "type": 2, "gender": gender,
                       "position": V.title(rng, ppl.title[person], 0.3),
                       "corp_name": ent.short_name[e] if ri[5] < 0.7 else ent.brand[e],
                       "corp_full_name": full}
        users = [owners[e]]
        for x in extra[i]:
            if len(users) < n_follow[i] and followers[x] not in users:
                users.append(followers[x])
        follow = []
        surname = ppl.surname[person]
        senior = ppl.seniority[person] in ("owner", "cxo", "vp")
        for ui, userid in enumerate(users):
            fr, pk = f[i][ui], picks[i][ui]
            remark = (f"{surname}总" if senior else f"{surname}经理", ppl.name[person],
                      f"{ppl.name[person]}-{ent.brand[e]}", f"{ent.brand[e]} {ppl.name[person]}",
                      "")[remark_kind[i][ui]]
            mobiles = [] if fr[0] < 0.5 else [ids.mobile_variant(rng, ppl.mobile[person], 0.5)]
            tags = []
            for gi, g in enumerate(firm.tag_groups):
                if fr[1 + gi] < 0.45:
                    t = g["tag"][pk[gi] % len(g["tag"])]
                    tags.append({"group_name": g["group_name"], "tag_name": t["name"], "tag_id": t["id"], "type": 1})
            add_way = add_ways[i][ui]
            follow.append({
                "userid": userid, "remark": remark, "description": "", "createtime": int(created[i, ui]),
                "tags": tags, "remark_corp_name": ent.short_name[e] if fr[5] < 0.5 else "",
                "remark_mobiles": mobiles, "add_way": add_way,
                "oper_userid": xid if add_way in (1, 3, 4) and fr[6] < 0.5 else userid,
                "state": P.STATES[pk[3] % len(P.STATES)],
            })
        yield {"external_contact": contact, "follow_user": follow}, person
