"""An org chart from WeCom departments and members: who reports to whom, and how deep.

reports_to(member) = the first active `direct_leader`; else the leader of the member's main department
(its `department_leader`, else members flagged `is_leader_in_dept`); when the member leads that
department, or it has no active leader, the leader of the parent department, climbing to the root.
Bad data gives a warning naming the member or department and a sensible result, never an exception:
a direct_leader cycle is cut (its members fall back to their departments), a leader who left is
skipped, a userid renamed (WeCom `NewUserID`) is followed, a member in several departments reports
through the main one, a reference to an unknown userid is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

LEFT_STATUSES = frozenset({2, 5})  # 2 disabled, 5 left; 4 (not activated) still belongs to the org


@dataclass(frozen=True)
class OrgWarning:
    kind: str      # direct_leader_cycle, leader_left, no_leader, several_departments, unknown_userid, ...
    subject: str   # the userid or "department:<id>"
    message: str


@dataclass
class Position:
    userid: str
    reports_to: str | None
    via: str | None              # direct_leader | department_leader | parent_department_leader | None (root)
    depth: int | None            # edges to the top; None for a member who left
    department_id: int | None    # the department the member reports through
    leads: list[int]             # departments the member leads
    active: bool
    position: str | None = None


@dataclass
class OrgChart:
    positions: dict[str, Position] = field(default_factory=dict)
    warnings: list[OrgWarning] = field(default_factory=list)

    def reports_to(self, userid: str) -> str | None:
        return self.positions[userid].reports_to

    def chain(self, userid: str) -> list[str]:
        """The member, their leader, that leader's leader, ... up to the top."""
        out, seen = [], set()
        while userid is not None and userid not in seen:
            seen.add(userid)
            out.append(userid)
            userid = self.positions[userid].reports_to if userid in self.positions else None
        return out

    def direct_reports(self, userid: str) -> list[str]:
        return sorted(u for u, p in self.positions.items() if p.reports_to == userid)


def _resolve_renames(renames: dict[str, str], warn) -> dict[str, str]:
    """old userid -> its newest userid (renames can chain: a -> b -> c)."""
    out = {}
    for old in renames:
        seen, cur = {old}, renames[old]
        while cur in renames and cur not in seen:
            seen.add(cur)
            cur = renames[cur]
        if cur in seen:
            warn("rename_cycle", old, f"userid renames loop back to {old!r}: keeping {old!r}")
            cur = old
        out[old] = cur
    return out


def build_org(departments: Iterable[dict], members: Iterable[dict], renames: dict[str, str] | None = None
              ) -> OrgChart:
    """departments: WeCom department/list records (id, parentid, department_leader);
    members: user/get records (userid, department, is_leader_in_dept, direct_leader, main_department,
    status, position); renames: old userid -> new userid."""
    chart = OrgChart()

    def warn(kind: str, subject: str, message: str) -> None:
        chart.warnings.append(OrgWarning(kind, subject, message))

    renamed = _resolve_renames(dict(renames or {}), warn)

    def current(userid: str | None) -> str | None:
        return renamed.get(userid, userid) if userid else None

    depts = {int(d["id"]): d for d in departments}
    users: dict[str, dict] = {}
    for m in members:
        uid = current(m["userid"])
        if uid in users:
            warn("duplicate_userid", uid, f"member {uid!r} appears twice (or under an old userid): keeping the first")
            continue
        users[uid] = m
    active = {u for u, m in users.items() if m.get("status") not in LEFT_STATUSES}

    # department -> its active leaders, in WeCom's order (department_leader first, then is_leader_in_dept)
    flagged: dict[int, list[str]] = {}
    for u, m in users.items():
        for dep, flag in zip(m.get("department") or [], m.get("is_leader_in_dept") or []):
            if flag:
                flagged.setdefault(int(dep), []).append(u)
    leaders: dict[int, list[str]] = {}
    for did, d in depts.items():
        named = [current(u) for u in (d.get("department_leader") or [])]
        ordered = list(dict.fromkeys(named + flagged.get(did, [])))
        for u in ordered:
            if u not in users:
                warn("unknown_userid", f"department:{did}", f"department {did} names leader {u!r}, who is not a member")
            elif u not in active:
                warn("leader_left", f"department:{did}",
                     f"leader {u!r} of department {did} has left (status {users[u].get('status')}): skipped")
        leaders[did] = [u for u in ordered if u in active]
        if not leaders[did]:
            warn("no_leader", f"department:{did}",
                 f"department {did} ({d.get('name') or ''}) has no active leader: its members report to the parent's")

    def home(uid: str) -> int | None:
        m = users[uid]
        deps = [int(x) for x in (m.get("department") or [])]
        main = m.get("main_department")
        main = int(main) if main not in (None, "") else None
        if len(deps) > 1:
            warn("several_departments", uid,
                 f"member {uid!r} is in departments {deps}: reporting through main department {main or deps[0]}")
        if main is not None and main in depts:
            return main
        known = [d for d in deps if d in depts]
        if deps and not known or main is not None and main not in depts:
            warn("unknown_department", uid, f"member {uid!r} names unknown department(s) {deps or [main]}")
        return known[0] if known else None

    def department_route(uid: str, did: int | None) -> tuple[str | None, str | None]:
        """Leader of the member's department, else of the nearest ancestor that has one."""
        via, seen = "department_leader", set()
        while did is not None and did in depts and did not in seen:
            seen.add(did)
            cand = [u for u in leaders.get(did, []) if u != uid]
            if uid not in leaders.get(did, []) and cand:
                return cand[0], via
            parent = depts[did].get("parentid")
            did = int(parent) if parent not in (None, "", 0) else None
            via = "parent_department_leader"
        return None, None

    homes = {u: home(u) for u in users}
    edge: dict[str, tuple[str | None, str | None]] = {}
    by_direct: set[str] = set()
    leads_of: dict[str, list[int]] = {}
    for did, ls in leaders.items():
        for u in ls:
            leads_of.setdefault(u, []).append(did)
    for uid, m in users.items():
        chart.positions[uid] = Position(uid, None, None, None, homes[uid], leads_of.get(uid, []), uid in active,
                                        m.get("position"))
        if uid not in active:
            continue
        target = None
        for raw in m.get("direct_leader") or []:
            cand = current(raw)
            if cand == uid:
                continue
            if cand not in users:
                warn("unknown_userid", uid, f"member {uid!r} names direct_leader {raw!r}, who is not a member")
            elif cand not in active:
                warn("leader_left", uid, f"direct_leader {cand!r} of {uid!r} has left: skipped")
            else:
                target = cand
                break
        if target is not None:
            edge[uid] = (target, "direct_leader")
            by_direct.add(uid)
        else:
            edge[uid] = department_route(uid, homes[uid])

    # Cycles: a member who reaches itself. Its cycle's direct_leader edges are replaced by department
    # routes; whatever still loops is cut at the member with the most reports (a root, with a warning).
    def find_cycle(start: str) -> list[str] | None:
        path, index, cur = [], {}, start
        while cur is not None and cur in edge:
            if cur in index:
                return path[index[cur]:]
            index[cur] = len(path)
            path.append(cur)
            cur = edge[cur][0]
        return None

    for uid in list(edge):
        cycle = find_cycle(uid)
        if not cycle:
            continue
        warn("direct_leader_cycle", ",".join(sorted(cycle)),
             f"reporting cycle {' -> '.join(cycle + [cycle[0]])}: its members report through their departments")
        for u in cycle:
            if u in by_direct:
                edge[u] = department_route(u, homes[u])
        cycle = find_cycle(uid)
        if cycle:
            top = max(cycle, key=lambda u: (len(chart.positions[u].leads), u))
            edge[top] = (None, None)
            warn("cycle_cut", top, f"{top!r} made a top of the org to end the cycle {' -> '.join(cycle)}")

    for uid, (target, via) in edge.items():
        chart.positions[uid].reports_to, chart.positions[uid].via = target, via
    for uid in edge:
        chart.positions[uid].depth = len(chart.chain(uid)) - 1
    return chart
