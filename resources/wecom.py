"""WeCom (企业微信) API client: cached access token, cursor paging, retries on the errcodes that ask for them.

Errors name the tenant (label), the API, its key parameters and errcode/errmsg. Secrets and tokens are
never logged or put in messages (requests' own exceptions carry the URL, so they are not chained).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import dagster as dg
import requests
import tenacity

from resources.errors import SourceApiError

log = logging.getLogger(__name__)

RETRY_ERRCODES = {-1, 45009, 45033}   # system busy, rate limit, too many concurrent calls
TOKEN_ERRCODES = {40014, 42001}       # invalid / expired token: re-fetch once
RATE_ERRCODES = {45009, 45033}        # back off longer: a WeCom per-minute block lasts 60 s
BUSY_MAX_RETRIES = 3                  # WeCom: retry "system busy" at most 3 times
BATCH_USERS = 100


@dataclass(frozen=True)
class WeComPage:
    """One page of batch/get_by_user. `cursor` fetches this page again; `next_cursor` the next one (None at the end).

    Cursors are `"<chunk>:<wecom cursor>"` over the chunks of ≤100 userids, valid for the same `userids` list.
    """
    records: list[dict]
    cursor: str | None
    next_cursor: str | None


class _Retryable(Exception):
    def __init__(self, message: str, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code, self.status = code, status


def _describe(params: dict | None, body: dict | None) -> str:
    parts = []
    for key, value in {**(params or {}), **(body or {})}.items():
        if isinstance(value, list):
            shown = ",".join(map(str, value[:3])) + (f",… ({len(value)})" if len(value) > 3 else "")
            value = f"[{shown}]"
        if value not in ("", None, "[]"):
            parts.append(f"{key}={value}")
    return " ".join(parts)


class WeComClient:
    def __init__(self, base_url: str, corpid: str, corpsecret: str, *, label: str = "", timeout_s: float = 30.0,
                 max_attempts: int = 6, max_backoff_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.corpid, self._secret = corpid, corpsecret
        self.label = label or corpid
        self.timeout_s, self.max_attempts, self.max_backoff_s = timeout_s, max_attempts, max_backoff_s
        self._session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:  # keeps the secret out of reprs and tracebacks
        return f"WeComClient({self.base_url!r}, corpid={self.corpid!r}, label={self.label!r})"

    # --- public API ---
    def departments(self, root_id: int | None = None) -> list[dict]:
        """department/list: the whole tree, or `root_id` and its subtree."""
        params = {"id": root_id} if root_id is not None else None
        return self._call("GET", "department/list", params=params)["department"]

    def member_ids(self, limit: int = 10000) -> Iterator[dict]:
        """user/list_id rows `{userid, department}`, one per (member, department), following next_cursor."""
        yield from self._cursor_pages("user/list_id", "dept_user", {"limit": limit})

    def user(self, userid: str) -> dict:
        data = self._call("GET", "user/get", params={"userid": userid})
        return {k: v for k, v in data.items() if k not in ("errcode", "errmsg")}

    def users(self) -> Iterator[dict]:
        """Each member once (user/get), whatever the number of departments they belong to."""
        for userid in dict.fromkeys(row["userid"] for row in self.member_ids()):
            yield self.user(userid)

    def follow_users(self) -> list[str]:
        return self._call("GET", "externalcontact/get_follow_user_list")["follow_user"]

    def external_contacts_by_user(self, userids: list[str], cursor: str | None = None, *, limit: int = 100,
                                  batch_size: int = BATCH_USERS) -> Iterator[WeComPage]:
        """batch/get_by_user over chunks of ≤100 userids; records are `{external_contact, follow_info}`.

        Resume with a page's `next_cursor` and the same `userids`.
        """
        batch_size = min(batch_size, BATCH_USERS)
        chunks = [userids[i:i + batch_size] for i in range(0, len(userids), batch_size)]
        chunk, wecom_cursor = 0, ""
        if cursor:
            head, sep, wecom_cursor = cursor.partition(":")
            if not sep or not head.isdigit() or int(head) >= max(len(chunks), 1):
                raise ValueError(f"wecom tenant {self.label}: not a batch/get_by_user cursor: {cursor!r}")
            chunk = int(head)
        while chunk < len(chunks):
            body = {"userid_list": chunks[chunk], "cursor": wecom_cursor, "limit": limit}
            data = self._call("POST", "externalcontact/batch/get_by_user", body=body)
            this = f"{chunk}:{wecom_cursor}" if (chunk or wecom_cursor) else None
            next_wecom = data.get("next_cursor") or ""
            if next_wecom:
                if next_wecom == wecom_cursor:
                    raise SourceApiError(f"wecom tenant {self.label}: batch/get_by_user returned the same cursor")
                wecom_cursor = next_wecom
            else:
                chunk, wecom_cursor = chunk + 1, ""
            following = f"{chunk}:{wecom_cursor}" if chunk < len(chunks) else None
            yield WeComPage(data.get("external_contact_list", []), this, following)

    def external_contact(self, external_userid: str) -> dict:
        """externalcontact/get, following its cursor: `{external_contact, follow_user: [all pages]}`."""
        cursor, follow_user, contact = "", [], None
        while True:
            params = {"external_userid": external_userid, "cursor": cursor}
            data = self._call("GET", "externalcontact/get", params=params)
            contact = data["external_contact"]
            follow_user.extend(data.get("follow_user", []))
            next_cursor = data.get("next_cursor") or ""
            if not next_cursor:
                return {"external_contact": contact, "follow_user": follow_user}
            if next_cursor == cursor:
                raise SourceApiError(f"wecom tenant {self.label}: externalcontact/get returned the same cursor")
            cursor = next_cursor

    def corp_tags(self) -> list[dict]:
        """get_corp_tag_list: every customer tag group with its tags."""
        return self._call("POST", "externalcontact/get_corp_tag_list", body={"tag_id": [], "group_id": []})["tag_group"]

    # --- paging, retries, token ---
    def _cursor_pages(self, path: str, key: str, body: dict) -> Iterator[dict]:
        cursor = ""
        while True:
            data = self._call("POST", path, body={**body, "cursor": cursor})
            yield from data.get(key, [])
            next_cursor = data.get("next_cursor") or ""
            if not next_cursor:
                return
            if next_cursor == cursor:
                raise SourceApiError(f"wecom tenant {self.label}: {path} returned the same cursor")
            cursor = next_cursor

    def _call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> dict:
        what = f"{path} {_describe(params, body)}".rstrip()

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.code == -1 and state.attempt_number > BUSY_MAX_RETRIES:
                return True
            return state.attempt_number >= self.max_attempts

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            base = 5.0 if isinstance(exc, _Retryable) and exc.code in RATE_ERRCODES else 0.5
            cap = min(self.max_backoff_s, base * 2 ** (state.attempt_number - 1))
            return cap / 2 + random.uniform(0, cap / 2)  # "equal jitter": never less than half the step

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("wecom tenant %s: %s: %s; attempt %d/%d, retrying in %.1f s", self.label, what, exc,
                        state.attempt_number, self.max_attempts, state.upcoming_sleep)

        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(_Retryable), stop=stop, wait=wait,
                                     before_sleep=before_sleep)
        try:
            return retrying(self._attempt, method, path, params, body, what)
        except tenacity.RetryError as err:
            exc = err.last_attempt.exception()
            assert isinstance(exc, _Retryable)
            raise SourceApiError(f"wecom tenant {self.label}: {what} failed: {exc} "
                                 f"(gave up after {err.last_attempt.attempt_number} attempts)",
                                 status=exc.status, code=exc.code) from None

    def _attempt(self, method: str, path: str, params: dict | None, body: dict | None, what: str) -> dict:
        token = self._access_token()
        data = self._send(method, path, {**(params or {}), "access_token": token}, body, what)
        if data.get("errcode") in TOKEN_ERRCODES:  # expired or invalidated early: re-fetch once, not a retry
            log.info("wecom tenant %s: %s: errcode %s, fetching a new access token", self.label, what,
                     data.get("errcode"))
            self._drop_token(token)
            token = self._access_token()
            data = self._send(method, path, {**(params or {}), "access_token": token}, body, what)
        return self._checked(data, what)

    def _checked(self, data: dict, what: str) -> dict:
        code = data.get("errcode", 0)
        if code == 0:
            return data
        detail = f"errcode {code} ({data.get('errmsg', '')})"
        if code in RETRY_ERRCODES:
            raise _Retryable(detail, code=code)
        raise SourceApiError(f"wecom tenant {self.label}: {what} failed: {detail}", code=code)

    def _send(self, method: str, path: str, params: dict, body: dict | None, what: str) -> dict:
        try:
            response = self._session.request(method, f"{self.base_url}/cgi-bin/{path}", params=params,
                                             json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:  # its message holds the URL, token included: don't chain it
            raise _Retryable(f"connection error ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}", status=response.status_code)
        if response.status_code != 200:
            raise SourceApiError(f"wecom tenant {self.label}: {what} failed: HTTP {response.status_code}",
                                 status=response.status_code)
        try:
            data = response.json()
        except ValueError:
            raise SourceApiError(f"wecom tenant {self.label}: {what} failed: response is not JSON",
                                 status=response.status_code) from None
        if not isinstance(data, dict):
            raise SourceApiError(f"wecom tenant {self.label}: {what} failed: unexpected response shape")
        return data

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_expires:
                what = f"gettoken corpid={self.corpid}"
                data = self._send("GET", "gettoken", {"corpid": self.corpid, "corpsecret": self._secret}, None, what)
                code = data.get("errcode", 0)
                if code in (40001, 40091, 40013, 41004):
                    raise SourceApiError(f"wecom tenant {self.label}: {what} failed: errcode {code} "
                                         f"({data.get('errmsg', '')}); check the corpid and corpsecret", code=code)
                data = self._checked(data, what)
                expires_in = float(data.get("expires_in", 7200))
                self._token = data["access_token"]
                self._token_expires = time.monotonic() + expires_in * 0.9  # refresh a little early
            return self._token

    def _drop_token(self, token: str) -> None:
        with self._token_lock:
            if self._token == token:  # another thread may have refreshed it already
                self._token = None


class WeComApi(dg.ConfigurableResource):
    """Retry and timeout settings; a client per tenant corp (credentials come from the tenant registry)."""

    timeout_s: float = 30.0
    max_attempts: int = 6
    max_backoff_s: float = 30.0

    def client(self, base_url: str, corpid: str, corpsecret: str, label: str) -> WeComClient:
        return WeComClient(base_url, corpid, corpsecret, label=label, timeout_s=self.timeout_s,
                           max_attempts=self.max_attempts, max_backoff_s=self.max_backoff_s)
