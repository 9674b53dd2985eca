"""Local call-center CRM: OAuth2 client credentials, keyset-paginated incremental pulls, and the
faults the real service shows (token expiry, 429 with Retry-After, 503). API: docs/crm-api.md."""
from __future__ import annotations

import base64
import binascii
import bisect
import json
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fincdp.localsaas._http import LocalServer, Request, Response

ENTITIES = ("enterprises", "contacts", "leads", "opportunities", "calls")
API_PREFIX = "/api/v1/"
DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
_EPOCH, _ONE_US = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)

Key = tuple[int, str]  # (updated_at as epoch microseconds, id): the sort and cursor order


class _BadRequest(Exception):
    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.response = Response(400, {"error": error, "message": message})


def _instant_us(value: str) -> int:
    """Epoch microseconds, so offsets compare as instants; naive times are ambiguous, so refused."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return (dt - _EPOCH) // _ONE_US


class _Table:
    """One tenant's records of one entity, with a (updated_at, id) index kept sorted for bisect."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict] = {}
        self.keys: list[Key] = []
        self.key_of: dict[str, Key] = {}

    @staticmethod
    def key(record: dict) -> Key:
        return _instant_us(record["updated_at"]), str(record["id"])

    def load(self, records: list[dict]) -> None:
        for record in records:
            key = self.key(record)
            self.by_id[key[1]] = record
            self.key_of[key[1]] = key
        self.keys = sorted(self.key_of.values())  # sort once; a later duplicate id wins

    def upsert(self, record: dict) -> None:
        key = self.key(record)
        old = self.key_of.get(key[1])
        if old is not None:
            del self.keys[bisect.bisect_left(self.keys, old)]
        bisect.insort(self.keys, key)
        self.by_id[key[1]] = record
        self.key_of[key[1]] = key


class CrmServer(LocalServer):
    """Serves each tenant folder's `crm/<entity>.jsonl` to that tenant's client_id only."""

    def __init__(self, tenants: dict[str, tuple[str, Path]], *, token_ttl_s: float = 7200,
                 rate_limit_per_s: float | None = None, burst: int = 20, fail_every: int = 0,
                 retry_after_s: int = 1, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._secrets = {client_id: secret for client_id, (secret, _) in tenants.items()}
        self._data_dirs = {client_id: Path(data_dir) for client_id, (_, data_dir) in tenants.items()}
        self.token_ttl_s = token_ttl_s
        self.rate_limit_per_s, self.burst = rate_limit_per_s, burst
        self.fail_every, self.retry_after_s = fail_every, retry_after_s
        self._tables: dict[str, dict[str, _Table]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client_id, monotonic expiry)
        self._buckets: dict[str, tuple[float, float]] = {}  # client_id -> (tokens, last refill)
        self._api_requests = 0
        self._lock = threading.Lock()  # handlers run on many threads; upsert races with pulls

    def start(self) -> "CrmServer":
        self._tables = {client_id: self._load(client_id, data_dir)
                        for client_id, data_dir in self._data_dirs.items()}
        super().start()
        return self

    @staticmethod
    def _load(client_id: str, data_dir: Path) -> dict[str, _Table]:
        tables = {}
        for entity in ENTITIES:
            table, path = _Table(), data_dir / "crm" / f"{entity}.jsonl"
            if path.exists():
                with path.open(encoding="utf-8") as lines:
                    try:
                        table.load([json.loads(line) for line in lines if line.strip()])
                    except (ValueError, KeyError, TypeError) as exc:  # a broken fixture must say where
                        raise ValueError(f"{client_id}: bad record in {path}: {exc!r}") from exc
            tables[entity] = table
        return tables

    # --- test helpers -------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def upsert(self, client_id: str, entity: str, record: dict) -> None:
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}")
        with self._lock:
            self._tables[client_id][entity].upsert(dict(record))

    # --- HTTP ---------------------------------------------------------------------------------

    def routes(self):
        routes = {("POST", "/oauth2/token"): self._token}
        for entity in ENTITIES:
            routes[("GET", API_PREFIX + entity)] = lambda request, e=entity: self._list(request, e)
        return routes

    def before_request(self, request: Request) -> Response | None:
        if not request.path.startswith(API_PREFIX) or self.fail_every <= 0:
            return None
        with self._lock:
            self._api_requests += 1
            failing = self._api_requests % self.fail_every == 0
        return Response(503, {"error": "unavailable"}) if failing else None

    def _token(self, request: Request) -> Response:
        content_type = _header(request, "Content-Type") or ""
        try:
            if "application/x-www-form-urlencoded" in content_type:
                form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
            else:
                form = request.json()
        except (ValueError, UnicodeDecodeError):
            return Response(400, {"error": "invalid_request", "message": "body is not JSON or a form"})
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        client_id = form.get("client_id")
        expected = self._secrets.get(client_id) if isinstance(client_id, str) else None
        given = str(form.get("client_secret", "")).encode()
        if expected is None or not secrets.compare_digest(given, expected.encode()):
            return Response(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + self.token_ttl_s)
        # Whole seconds, rounded down, so a client never believes a token lives longer than it does.
        return Response(200, {"access_token": token, "token_type": "Bearer",
                              "expires_in": int(self.token_ttl_s)})

    def _authenticate(self, request: Request) -> str | Response:
        scheme, _, token = (_header(request, "Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Response(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
        with self._lock:
            client_id, expires_at = self._tokens.get(token.strip(), (None, 0.0))
        if client_id is None or time.monotonic() >= expires_at:
            return Response(401, {"error": "token_expired"},
                            {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return client_id

    def _take_rate_token(self, client_id: str) -> bool:
        if self.rate_limit_per_s is None:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_limit_per_s)
            allowed = tokens >= 1
            self._buckets[client_id] = (tokens - 1 if allowed else tokens, now)
        return allowed

    def _list(self, request: Request, entity: str) -> Response:
        client_id = self._authenticate(request)
        if isinstance(client_id, Response):
            return client_id
        if not self._take_rate_token(client_id):
            return Response(429, {"error": "rate_limited"}, {"Retry-After": str(self.retry_after_s)})
        try:
            since, before, limit = _window(request.query)
            after = _decode_cursor(request.query.get("cursor") or None, entity, since, before)
        except _BadRequest as bad:
            return bad.response

        with self._lock:
            table = self._tables[client_id][entity]
            keys = table.keys
            start = (bisect.bisect_right(keys, after) if after is not None
                     else bisect.bisect_left(keys, (since, "")) if since is not None else 0)
            end = bisect.bisect_left(keys, (before, "")) if before is not None else len(keys)
            page = keys[start:min(start + limit, end)]
            data = [table.by_id[record_id] for _, record_id in page]
            has_more = start + limit < end
        next_cursor = _encode_cursor(page[-1], entity, since, before) if has_more else None
        return Response(200, {"data": data, "next_cursor": next_cursor, "has_more": has_more})


def _header(request: Request, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


def _window(query: dict[str, str]) -> tuple[int | None, int | None, int]:
    bounds = []
    for name in ("updated_since", "updated_before"):
        raw = query.get(name) or None
        try:
            # An unencoded "+08:00" in a query string arrives as " 08:00" (curl users do this).
            bounds.append(_instant_us(raw.replace(" ", "+")) if raw else None)
        except ValueError as exc:
            raise _BadRequest("invalid_request", f"{name}: need ISO 8601 with offset ({exc})") from None
    try:
        limit = int(query.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise _BadRequest("invalid_request", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _BadRequest("invalid_request", f"limit must be between 1 and {MAX_LIMIT}")
    return bounds[0], bounds[1], limit


def _encode_cursor(last: Key, entity: str, since: int | None, before: int | None) -> str:
    state = {"k": list(last), "e": entity, "s": since, "b": before}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None, entity: str, since: int | None, before: int | None) -> Key | None:
    """The last key served; the cursor carries its query so it cannot be replayed on another one."""
    if cursor is None:
        return None
    try:
        state: Any = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        (at, record_id), matches = state["k"], (state["e"], state["s"], state["b"]) == (entity, since, before)
        if not (isinstance(at, int) and isinstance(record_id, str)):
            raise TypeError
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _BadRequest("invalid_cursor", "cursor does not decode") from None
    if not matches:
        raise _BadRequest("invalid_cursor", "cursor belongs to another entity or window")
    return at, record_id
