"""Client for the call-center CRM's REST API (OAuth2 client credentials, keyset cursors)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

import dagster as dg
import requests
import tenacity

from resources.errors import SourceApiError

log = logging.getLogger(__name__)

# Network failures that a fresh attempt can fix; other RequestExceptions (bad URL...) cannot.
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass
class CrmPage:
    records: list[dict]
    cursor: str | None  # the cursor this page was fetched with; None for the first page
    next_cursor: str | None  # persist it after storing `records` to resume an interrupted pull


class _Retriable(Exception):
    def __init__(self, detail: str, *, status: int | None = None, code: str | None = None,
                 retry_after_s: float | None = None):
        super().__init__(detail)
        self.status, self.code, self.retry_after_s = status, code, retry_after_s


class CrmClient:
    """Pulls one tenant's CRM entities page by page; retries only what retrying can fix."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, label: str = "",
                 page_size: int = 500, timeout_s: float = 30.0, max_attempts: int = 8,
                 max_backoff_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.label = label or f"client {client_id}"
        self.page_size, self.timeout_s = page_size, timeout_s
        self.max_attempts, self.max_backoff_s = max_attempts, max_backoff_s
        self._session = requests.Session()
        self._token: str | None = None
        self._token_refresh_at = 0.0  # time.monotonic() after which the token is renewed
        self._backoff = tenacity.wait_random_exponential(multiplier=0.5, max=max_backoff_s)

    def __repr__(self) -> str:  # no secret or token in logs and tracebacks
        return f"CrmClient({self.base_url!r}, label={self.label!r})"

    def close(self) -> None:
        self._session.close()

    def iter_pages(self, entity: str, updated_since: datetime | None,
                   updated_before: datetime | None, cursor: str | None = None) -> Iterator[CrmPage]:
        """Pages of records with updated_since <= updated_at < updated_before, oldest first.

        Resuming needs the same window as the pull that handed out `cursor`; the server refuses
        a cursor from another window.
        """
        params: dict[str, Any] = {"limit": self.page_size}
        for name, bound in (("updated_since", updated_since), ("updated_before", updated_before)):
            if bound is not None:
                if bound.tzinfo is None:  # the server compares instants; a naive time is ambiguous
                    raise ValueError(f"{name} must be timezone-aware, got {bound!r}")
                params[name] = bound.isoformat()
        while True:
            body = self._get_page(entity, dict(params, cursor=cursor) if cursor else params, cursor)
            next_cursor = body.get("next_cursor") or None
            yield CrmPage(body.get("data") or [], cursor, next_cursor)
            if next_cursor is None:
                return
            cursor = next_cursor

    # --- one page, with retries ---------------------------------------------------------------

    def _get_page(self, entity: str, params: dict[str, Any], cursor: str | None) -> dict:
        where = f"crm tenant {self.label}: GET {entity} ({_describe(cursor)})"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retriable),
            before_sleep=lambda state: log.warning(
                "%s: %s; retrying in %.1fs (attempt %d of %d)", where, state.outcome.exception(),
                state.upcoming_sleep, state.attempt_number, self.max_attempts),
        )
        try:
            return retrying(self._attempt, where, f"{self.base_url}/api/v1/{entity}", params)
        except tenacity.RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            raise SourceApiError(f"{where} failed after {self.max_attempts} attempts: {last}",
                                 status=last.status, code=last.code) from last

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retriable) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.max_backoff_s)  # the server said when; believe it
        return self._backoff(state)

    def _attempt(self, where: str, url: str, params: dict[str, Any]) -> dict:
        refreshed = False
        while True:
            response = self._send(where, "GET", url, params=params,
                                  headers={"Authorization": f"Bearer {self._access_token(where)}"})
            if response.status_code == 401 and _error_code(response) == "token_expired" and not refreshed:
                # Revoked or expired early: one fresh token per request, not counted as a retry.
                self._token, refreshed = None, True
                continue
            return self._json_or_raise(where, response)

    def _access_token(self, where: str) -> str:
        if self._token is not None and time.monotonic() < self._token_refresh_at:
            return self._token
        issued_at = time.monotonic()
        response = self._send(where, "POST", f"{self.base_url}/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self._client_secret})
        if response.status_code == 401 and _error_code(response) == "invalid_client":
            raise SourceApiError(f"{where}: the CRM refused the credentials of client_id "
                                 f"{self.client_id!r} (401 invalid_client); check the tenant's secret",
                                 status=401, code="invalid_client")
        body = self._json_or_raise(f"{where}: token request", response)
        lifetime = float(body.get("expires_in") or 0)
        # Renew a little early (10%, at most a minute) so a token never expires in flight.
        self._token_refresh_at = issued_at + lifetime - min(60.0, lifetime / 10)
        self._token = body["access_token"]
        return self._token

    def _send(self, where: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        except _NETWORK_ERRORS as exc:
            raise _Retriable(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _json_or_raise(where: str, response: requests.Response) -> dict:
        status = response.status_code
        if status == 429:
            raise _Retriable(f"429 {_error_detail(response)}", status=429, code=_error_code(response),
                             retry_after_s=_retry_after_s(response))
        if status >= 500:
            raise _Retriable(f"{status} {_error_detail(response)}", status=status,
                             code=_error_code(response))
        if status >= 400:
            raise SourceApiError(f"{where} failed: {status} {_error_detail(response)}",
                                 status=status, code=_error_code(response))
        try:
            return response.json()
        except ValueError:  # truncated by a proxy, most likely; another attempt may get it whole
            raise _Retriable(f"{status} with a body that is not JSON", status=status) from None


def _describe(cursor: str | None) -> str:
    if cursor is None:
        return "first page"
    return f"cursor={cursor[:24]}…" if len(cursor) > 24 else f"cursor={cursor}"


def _error_body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(response: requests.Response) -> str | None:
    return _error_body(response).get("error")


def _error_detail(response: requests.Response) -> str:
    body = _error_body(response)
    if not body:
        return response.text[:200].strip() or response.reason or ""
    return " ".join(str(part) for part in (body.get("error"), body.get("message")) if part)


def _retry_after_s(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):  # absent, or an HTTP date: fall back to exponential backoff
        return None


class CrmApi(dg.ConfigurableResource):
    """Retry and paging settings; each tenant's URL and credentials come from its own config."""

    page_size: int = 500
    timeout_s: float = 30.0
    max_attempts: int = 8
    max_backoff_s: float = 30.0

    def client(self, base_url: str, client_id: str, client_secret: str, label: str) -> CrmClient:
        return CrmClient(base_url, client_id, client_secret, label=label, page_size=self.page_size,
                         timeout_s=self.timeout_s, max_attempts=self.max_attempts,
                         max_backoff_s=self.max_backoff_s)
