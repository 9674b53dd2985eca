"""A local WeCom (企业微信) server: the real /cgi-bin/ shapes over a generated data set, several corps at once.

Errors are HTTP 200 with a non-zero `errcode`, as WeCom answers them. Faults the real service shows can be
injected: token expiry (`expire_tokens()`), per-minute rate limits (45009) and "system busy" (-1).
See docs/wecom-api.md for what is implemented.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fincdp.localsaas._http import Handler, LocalServer, Request, Response
from fincdp.localsaas.wecom_callbacks import CallbackSender, event_xml, party_fields, user_fields

API = "/cgi-bin/"
USER_LIST_MAX = 10000
BATCH_USERS_MAX = 100
BATCH_LIMIT_MAX = 100
BATCH_LIMIT_DEFAULT = 50
# follow_user fields the batch API returns in follow_info (tags become tag_id: ids only)
FOLLOW_INFO_FIELDS = ("userid", "remark", "description", "createtime", "remark_corp_name", "remark_mobiles",
                      "oper_userid", "add_way", "state", "wechat_channels")


class ApiError(Exception):
    """An errcode answer; raised by handlers, turned into `{"errcode","errmsg"}` by the wrapper."""

    def __init__(self, errcode: int, errmsg: str, corpid: str = ""):
        super().__init__(errmsg)
        self.errcode, self.errmsg, self.corpid = errcode, errmsg, corpid


def _ok(**body: Any) -> dict:
    return {"errcode": 0, "errmsg": "ok", **body}


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass
class _Corp:
    corpid: str
    secret: str
    departments: list[dict]
    users: dict[str, dict]          # userid -> user/get record, file order
    externals: dict[str, dict]      # external_userid -> {"external_contact", "follow_user"}
    corp_tags: list[dict]
    tags: list[dict]                # employee tags: [{"tagid","tagname","userlist":[{"userid","name"}],"partylist"}]
    by_follower: dict[str, list[tuple[dict, dict]]] = field(default_factory=dict)

    @classmethod
    def load(cls, corpid: str, secret: str, data_dir: Path) -> "_Corp":
        d = Path(data_dir) / "wecom"
        users = {u["userid"]: u for u in _read_jsonl(d / "users.jsonl")}
        externals = {c["external_contact"]["external_userid"]: c for c in _read_jsonl(d / "external_contacts.jsonl")}
        corp = cls(corpid, secret, _read_json(d / "departments.json", []), users, externals,
                   _read_json(d / "corp_tags.json", []), _read_json(d / "tags.json", []))
        for contact in externals.values():
            for follow in contact.get("follow_user", []):
                corp.by_follower.setdefault(follow["userid"], []).append((contact, follow))
        return corp

    def subtree(self, root: int | None) -> list[dict]:
        if root is None:
            return list(self.departments)
        if not any(d["id"] == root for d in self.departments):
            raise ApiError(60123, "invalid party id")
        keep, frontier = {root}, [root]
        while frontier:
            children = [d["id"] for d in self.departments if d.get("parentid") in frontier and d["id"] not in keep]
            keep.update(children)
            frontier = children
        return [d for d in self.departments if d["id"] in keep]


def _scope_key(scope: str) -> str:
    return hashlib.sha1(scope.encode()).hexdigest()[:10]


def encode_cursor(offset: int, scope: str) -> str:
    """An opaque cursor bound to what it pages over (a cursor from another list is rejected with 50100)."""
    raw = json.dumps({"o": offset, "s": _scope_key(scope)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
        valid = data["s"] == _scope_key(scope) and offset >= 0
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise ApiError(50100, "invalid cursor")
    return offset


def _page(rows: list, cursor: str, limit: int, scope: str) -> tuple[list, str]:
    start = decode_cursor(cursor, scope)
    if start > len(rows):
        raise ApiError(50100, "invalid cursor")
    end = start + limit
    return rows[start:end], encode_cursor(end, scope) if end < len(rows) else ""


def _int(value: Any, errcode: int, errmsg: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(errcode, errmsg) from None


class _OrgAdmin:
    """Org changes an admin makes in the WeCom console, each pushed to the corp's callback URL (if one is
    registered) as a `change_contact` event. `at` (epoch seconds) sets CreateTime, for tests and demos.
    Over HTTP: POST /admin/callbacks/register {corpid, url, token, encoding_aes_key} and
    POST /admin/contact/change {corpid, change_type, userid | id, changes: {...}, create_time} (and
    external_userid for add_external_contact / del_external_contact / del_follow_user, sent as
    `change_external_contact`)."""

    _corps: dict
    _lock: threading.Lock
    callbacks: CallbackSender

    def _corp(self, corpid: str) -> _Corp:
        if corpid not in self._corps:
            raise ApiError(40013, "invalid corpid")
        return self._corps[corpid]

    def _push(self, corpid: str, change_type: str, fields: list, at: int | None,
              event: str = "change_contact") -> int | None:
        return self.callbacks.send(corpid, change_type, event_xml(corpid, event, change_type, fields,
                                                                  int(time.time()) if at is None else at))

    def register_callback(self, corpid: str, url: str, token: str, encoding_aes_key: str) -> None:
        self._corp(corpid)
        self.callbacks.register(corpid, url, token, encoding_aes_key)

    def create_user(self, corpid: str, user: dict, at: int | None = None) -> int | None:
        corp = self._corp(corpid)
        with self._lock:
            if user["userid"] in corp.users:
                raise ApiError(60102, "userid existed")
            corp.users[user["userid"]] = dict(user)
        return self._push(corpid, "create_user", user_fields(user["userid"], user), at)

    def update_user(self, corpid: str, userid: str, at: int | None = None, **changes: Any) -> int | None:
        """changes: user/get fields (department, main_department, is_leader_in_dept, direct_leader, position,
        status, ...); `new_userid` renames."""
        corp = self._corp(corpid)
        new_userid = changes.pop("new_userid", None)
        with self._lock:
            if userid not in corp.users:
                raise ApiError(60111, "userid not found")
            user = corp.users.pop(userid)
            user.update(changes)
            if new_userid:
                user["userid"] = new_userid
                for d in corp.departments:
                    d["department_leader"] = [new_userid if u == userid else u for u in d.get("department_leader", [])]
                for u in corp.users.values():
                    u["direct_leader"] = [new_userid if x == userid else x for x in u.get("direct_leader", [])]
            corp.users[user["userid"]] = user
        return self._push(corpid, "update_user", user_fields(userid, user, new_userid), at)

    def delete_user(self, corpid: str, userid: str, at: int | None = None) -> int | None:
        """The member leaves: gone from the member APIs, from department leaders and from direct leaders."""
        corp = self._corp(corpid)
        with self._lock:
            if corp.users.pop(userid, None) is None:
                raise ApiError(60111, "userid not found")
            for d in corp.departments:
                d["department_leader"] = [u for u in d.get("department_leader", []) if u != userid]
            for u in corp.users.values():
                u["direct_leader"] = [x for x in u.get("direct_leader", []) if x != userid]
        return self._push(corpid, "delete_user", user_fields(userid, None), at)

    def update_party(self, corpid: str, dept_id: int, at: int | None = None, **changes: Any) -> int | None:
        corp = self._corp(corpid)
        with self._lock:
            found = [d for d in corp.departments if d["id"] == dept_id]
            if found:
                found[0].update(changes)
                dept, change_type = found[0], "update_party"
            else:
                dept, change_type = {"id": dept_id, "department_leader": [], **changes}, "create_party"
                corp.departments.append(dept)
        return self._push(corpid, change_type, party_fields(dept_id, dept), at)

    def delete_party(self, corpid: str, dept_id: int, at: int | None = None) -> int | None:
        corp = self._corp(corpid)
        with self._lock:
            corp.departments[:] = [d for d in corp.departments if d["id"] != dept_id]
        return self._push(corpid, "delete_party", party_fields(dept_id, None), at)

    def add_external_follow(self, corpid: str, userid: str, external_userid: str, at: int | None = None,
                            state: str = "") -> int | None:
        """A member adds an existing external contact (`add_external_contact`)."""
        corp = self._corp(corpid)
        created = int(time.time()) if at is None else at
        with self._lock:
            contact = corp.externals.get(external_userid)
            if contact is None or userid not in corp.users:
                raise ApiError(40096, "invalid external userid or userid")
            follow = {"userid": userid, "createtime": created, "add_way": 1, "state": state, "tags": []}
            contact.setdefault("follow_user", []).append(follow)
            corp.by_follower.setdefault(userid, []).append((contact, follow))
        return self._push(corpid, "add_external_contact", [("UserID", userid), ("ExternalUserID", external_userid),
                                                           ("State", state or None), ("WelcomeCode", "WELCOMECODE")],
                          created, "change_external_contact")

    def delete_external_follow(self, corpid: str, userid: str, external_userid: str, at: int | None = None,
                               by_customer: bool = False) -> int | None:
        """The member deletes the customer (`del_external_contact`), or the customer the member
        (`del_follow_user`)."""
        corp = self._corp(corpid)
        with self._lock:
            contact = corp.externals.get(external_userid)
            if contact is None:
                raise ApiError(40096, "invalid external userid")
            contact["follow_user"] = [f for f in contact.get("follow_user", []) if f["userid"] != userid]
            corp.by_follower[userid] = [(c, f) for c, f in corp.by_follower.get(userid, [])
                                        if c["external_contact"]["external_userid"] != external_userid]
            if not corp.by_follower[userid]:
                del corp.by_follower[userid]
        change = "del_follow_user" if by_customer else "del_external_contact"
        return self._push(corpid, change, [("UserID", userid), ("ExternalUserID", external_userid)], at,
                          "change_external_contact")

    def _admin_register(self, request: Request) -> Response:
        try:
            b = request.json()
            self.register_callback(b["corpid"], b["url"], b["token"], b["encoding_aes_key"])
        except ApiError as exc:
            return Response(200, {"errcode": exc.errcode, "errmsg": exc.errmsg})
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"errcode": 40058, "errmsg": f"{type(exc).__name__}: {exc}"})
        return Response(200, _ok())

    def _admin_change(self, request: Request) -> Response:
        try:
            b = request.json()
            corpid, change, at, changes = b["corpid"], b["change_type"], b.get("create_time"), b.get("changes") or {}
            if change == "create_user":
                status = self.create_user(corpid, {"userid": b["userid"], **changes}, at)
            elif change == "update_user":
                status = self.update_user(corpid, b["userid"], at, **changes)
            elif change == "delete_user":
                status = self.delete_user(corpid, b["userid"], at)
            elif change in ("create_party", "update_party"):
                status = self.update_party(corpid, int(b["id"]), at, **changes)
            elif change == "delete_party":
                status = self.delete_party(corpid, int(b["id"]), at)
            elif change == "add_external_contact":
                status = self.add_external_follow(corpid, b["userid"], b["external_userid"], at)
            elif change in ("del_external_contact", "del_follow_user"):
                status = self.delete_external_follow(corpid, b["userid"], b["external_userid"], at,
                                                     by_customer=change == "del_follow_user")
            else:
                raise ValueError(f"change_type {change!r} is not one of create/update/delete_user|party, "
                                 "add_external_contact, del_external_contact, del_follow_user")
        except ApiError as exc:
            return Response(200, {"errcode": exc.errcode, "errmsg": exc.errmsg})
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"errcode": 40058, "errmsg": f"{type(exc).__name__}: {exc}"})
        return Response(200, _ok(callback_status=status))


class WeComServer(_OrgAdmin, LocalServer):
    """Serves `corps` (corpid -> (corpsecret, data_dir)); each token sees only its own corp's data.

    `per_minute_limit` caps calls per corp per API in a sliding window of `rate_window_s` (60 s, as WeCom;
    tests shorten it) and answers 45009 beyond it. `busy_every=N` answers every Nth API call (gettoken
    excluded) with errcode -1. `api_log` records (corpid, path, errcode) for every /cgi-bin/ call.
    """

    def __init__(self, corps: dict[str, tuple[str, Path]], *, token_ttl_s: float = 7200,
                 per_minute_limit: int | None = None, busy_every: int = 0, external_page_size: int = 500,
                 rate_window_s: float = 60.0, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._corps = {corpid: _Corp.load(corpid, secret, Path(data_dir))
                       for corpid, (secret, data_dir) in corps.items()}
        self.token_ttl_s = token_ttl_s
        self.per_minute_limit = per_minute_limit
        self.busy_every = busy_every
        self.external_page_size = external_page_size
        self.rate_window_s = rate_window_s
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (corpid, expires_at monotonic)
        self._calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._api_calls = 0
        self._lock = threading.Lock()
        self.api_log: list[tuple[str, str, int]] = []
        self.callbacks = CallbackSender()   # change callbacks (fincdp/localsaas/wecom_callbacks.py)

    # --- test helpers ---
    def expire_tokens(self) -> None:
        """Expire every token issued so far: the next call with one answers 42001."""
        with self._lock:
            self._tokens = {t: (corpid, 0.0) for t, (corpid, _) in self._tokens.items()}

    # --- plumbing ---
    def routes(self) -> dict[tuple[str, str], Handler]:
        api: dict[tuple[str, str], Callable[[Request, _Corp], dict]] = {
            ("GET", "department/list"): self.department_list,
            ("GET", "department/simplelist"): self.department_simplelist,
            ("GET", "department/get"): self.department_get,
            ("POST", "user/list_id"): self.user_list_id,
            ("GET", "user/get"): self.user_get,
            ("GET", "tag/list"): self.tag_list,
            ("GET", "tag/get"): self.tag_get,
            ("GET", "externalcontact/get_follow_user_list"): self.follow_user_list,
            ("GET", "externalcontact/list"): self.external_list,
            ("GET", "externalcontact/get"): self.external_get,
            ("POST", "externalcontact/batch/get_by_user"): self.external_batch_by_user,
            ("POST", "externalcontact/get_corp_tag_list"): self.corp_tag_list,
        }
        routes = {(method, API + path): self._authenticated(path, fn) for (method, path), fn in api.items()}
        routes[("GET", API + "gettoken")] = self._logged("gettoken", self.gettoken)
        routes[("POST", "/admin/callbacks/register")] = self._admin_register
        routes[("POST", "/admin/contact/change")] = self._admin_change
        return routes

    def _logged(self, path: str, fn: Callable[[Request], tuple[str, dict]]) -> Handler:
        def handler(request: Request) -> Response:
            try:
                corpid, body = fn(request)
            except ApiError as exc:
                corpid, body = exc.corpid, {"errcode": exc.errcode, "errmsg": exc.errmsg}
            with self._lock:
                self.api_log.append((corpid, path, body["errcode"]))
            return Response(200, body)
        return handler

    def _authenticated(self, path: str, fn: Callable[[Request, _Corp], dict]) -> Handler:
        def call(request: Request) -> tuple[str, dict]:
            corp = self._admit(request, path)
            try:
                return corp.corpid, fn(request, corp)
            except ApiError as exc:
                exc.corpid = corp.corpid
                raise
        return self._logged(path, call)

    def _admit(self, request: Request, path: str) -> _Corp:
        """System busy, then the token, then the per-corp per-API rate limit."""
        with self._lock:
            self._api_calls += 1
            if self.busy_every and self._api_calls % self.busy_every == 0:
                raise ApiError(-1, "system busy")
            token = request.query.get("access_token", "")
            if not token:
                raise ApiError(41001, "access_token missing")
            if token not in self._tokens:
                raise ApiError(40014, "invalid access_token")
            corpid, expires_at = self._tokens[token]
            if time.monotonic() >= expires_at:
                raise ApiError(42001, "access_token expired", corpid)
            if self.per_minute_limit is not None:
                now, window = time.monotonic(), self._calls[(corpid, path)]
                while window and window[0] <= now - self.rate_window_s:
                    window.popleft()
                if len(window) >= self.per_minute_limit:
                    raise ApiError(45009, "api freq out of limit", corpid)
                window.append(now)
        return self._corps[corpid]

    @staticmethod
    def _body(request: Request) -> dict:
        try:
            body = request.json()
        except ValueError:
            raise ApiError(47001, "data format error") from None
        if not isinstance(body, dict):
            raise ApiError(47001, "data format error")
        return body

    # --- access token ---
    def gettoken(self, request: Request) -> tuple[str, dict]:
        corpid, secret = request.query.get("corpid", ""), request.query.get("corpsecret")
        corp = self._corps.get(corpid)
        if corp is None:
            raise ApiError(40013, "invalid corpid")
        if not secret:
            raise ApiError(41004, "corpsecret missing", corpid)
        if not secrets.compare_digest(secret.encode(), corp.secret.encode()):
            raise ApiError(40001, "invalid credential", corpid)
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = (corpid, time.monotonic() + self.token_ttl_s)
        return corpid, _ok(access_token=token, expires_in=int(self.token_ttl_s))

    # --- departments ---
    @staticmethod
    def _dept_id(request: Request) -> int | None:
        raw = request.query.get("id", "")
        return _int(raw, 60123, "invalid party id") if raw != "" else None

    def department_list(self, request: Request, corp: _Corp) -> dict:
        return _ok(department=corp.subtree(self._dept_id(request)))

    def department_simplelist(self, request: Request, corp: _Corp) -> dict:
        return _ok(department_id=[{"id": d["id"], "parentid": d.get("parentid", 0), "order": d.get("order", 0)}
                                  for d in corp.subtree(self._dept_id(request))])

    def department_get(self, request: Request, corp: _Corp) -> dict:
        dept_id = self._dept_id(request)
        found = [d for d in corp.departments if d["id"] == dept_id]
        if not found:
            raise ApiError(60123, "invalid party id")
        return _ok(department=found[0])

    # --- members ---
    def user_list_id(self, request: Request, corp: _Corp) -> dict:
        body = self._body(request)
        limit = _int(body.get("limit", USER_LIST_MAX), 40058, "invalid limit")
        if not 1 <= limit <= USER_LIST_MAX:
            raise ApiError(40058, f"limit must be in [1, {USER_LIST_MAX}]")
        rows = [{"userid": u["userid"], "department": dept}
                for u in corp.users.values() for dept in u.get("department", [])]
        page, next_cursor = _page(rows, str(body.get("cursor") or ""), limit, f"{corp.corpid}/user/list_id")
        return _ok(next_cursor=next_cursor, dept_user=page)

    def user_get(self, request: Request, corp: _Corp) -> dict:
        userid = request.query.get("userid", "")
        if not userid:
            raise ApiError(41009, "missing userid")
        if userid not in corp.users:
            raise ApiError(60111, "userid not found")
        return _ok(**corp.users[userid])

    # --- employee tags ---
    def tag_list(self, request: Request, corp: _Corp) -> dict:
        return _ok(taglist=[{"tagid": t["tagid"], "tagname": t["tagname"]} for t in corp.tags])

    def tag_get(self, request: Request, corp: _Corp) -> dict:
        tagid = _int(request.query.get("tagid"), 40068, "invalid tagid")
        for t in corp.tags:
            if t["tagid"] == tagid:
                return _ok(tagname=t["tagname"], userlist=t.get("userlist", []), partylist=t.get("partylist", []))
        raise ApiError(40068, "invalid tagid")

    # --- external contacts ---
    def follow_user_list(self, request: Request, corp: _Corp) -> dict:
        return _ok(follow_user=list(corp.by_follower))

    def external_list(self, request: Request, corp: _Corp) -> dict:
        userid = request.query.get("userid", "")
        if userid not in corp.users:
            raise ApiError(60111, "userid not found")
        if userid not in corp.by_follower:
            raise ApiError(84061, "not external contact")
        return _ok(external_userid=[c["external_contact"]["external_userid"] for c, _ in corp.by_follower[userid]])

    def external_get(self, request: Request, corp: _Corp) -> dict:
        external_userid = request.query.get("external_userid", "")
        contact = corp.externals.get(external_userid)
        if contact is None:
            raise ApiError(40096, "invalid external userid")
        page, next_cursor = _page(contact.get("follow_user", []), request.query.get("cursor", ""),
                                  self.external_page_size, f"{corp.corpid}/externalcontact/get/{external_userid}")
        return _ok(external_contact=contact["external_contact"], follow_user=page, next_cursor=next_cursor)

    def external_batch_by_user(self, request: Request, corp: _Corp) -> dict:
        body = self._body(request)
        userids = body.get("userid_list")
        if (not isinstance(userids, list) or not 1 <= len(userids) <= BATCH_USERS_MAX
                or not all(isinstance(u, str) for u in userids)):
            raise ApiError(40058, f"userid_list must hold 1 to {BATCH_USERS_MAX} userids")
        limit = _int(body.get("limit", BATCH_LIMIT_DEFAULT), 40058, "invalid limit")
        if not 1 <= limit <= BATCH_LIMIT_MAX:
            raise ApiError(40058, f"limit must be in [1, {BATCH_LIMIT_MAX}]")
        rows = [(contact, follow) for u in dict.fromkeys(userids) for contact, follow in corp.by_follower.get(u, [])]
        scope = f"{corp.corpid}/batch/get_by_user/" + ",".join(userids)
        page, next_cursor = _page(rows, str(body.get("cursor") or ""), limit, scope)
        return _ok(external_contact_list=[{"external_contact": contact["external_contact"],
                                           "follow_info": _follow_info(follow)} for contact, follow in page],
                   next_cursor=next_cursor)

    def corp_tag_list(self, request: Request, corp: _Corp) -> dict:
        body = self._body(request)
        group_ids, tag_ids = body.get("group_id") or [], body.get("tag_id") or []
        if group_ids:  # as WeCom: group_id wins over tag_id when both are given
            groups = [g for g in corp.corp_tags if g["group_id"] in group_ids]
        elif tag_ids:
            groups = [{**g, "tag": [t for t in g.get("tag", []) if t["id"] in tag_ids]} for g in corp.corp_tags]
            groups = [g for g in groups if g["tag"]]
        else:
            groups = list(corp.corp_tags)
        return _ok(tag_group=groups)


def _follow_info(follow: dict) -> dict:
    info = {k: follow[k] for k in FOLLOW_INFO_FIELDS if k in follow}
    info["tag_id"] = [t["tag_id"] for t in follow.get("tags", []) if t.get("type", 1) == 1 and t.get("tag_id")]
    return info
