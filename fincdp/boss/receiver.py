"""The WeCom callback receiver of one tenant (`fincdp wecom callbacks serve --tenant T`).

GET answers WeCom's URL verification with the bare decrypted echostr. POST verifies msg_signature,
decrypts (receive_id must be the tenant's corpid), keeps the event's org fields and commits it to the
tenant's inbox before answering 200, so an acknowledged event is never lost whether or not the pipeline
runs. A forged signature answers 403, an undecryptable body 400; both are logged without payload or
personal data and dead-lettered (reason, body hash and size). An authentic event that is no org change
is acknowledged (WeCom would retry it otherwise) and dead-lettered as `unsupported_event`. The work per callback is a
decryption and one SQLite commit: far inside WeCom's 5 s.
"""
from __future__ import annotations

import hashlib
import logging

from fincdp.boss.callbacks import CallbackError, CallbackInbox, parse_event
from fincdp.localsaas._http import LocalServer, Request, Response
from fincdp.wecom_crypto import SignatureMismatch, WeComCrypto

log = logging.getLogger("fincdp.wecom.callbacks")
PATH = "/wecom/callback"


def _text(status: int, body: str) -> Response:
    return Response(status, body, content_type="text/plain; charset=utf-8")


class CallbackReceiver(LocalServer):
    def __init__(self, tenant_id: str, crypto: WeComCrypto, inbox: CallbackInbox, *, host: str = "127.0.0.1",
                 port: int = 0):
        super().__init__(host, port)
        self.tenant_id, self.crypto, self.inbox = tenant_id, crypto, inbox
        self.stored = self.duplicates = self.rejected = 0

    @property
    def callback_url(self) -> str:
        return self.url + PATH

    def routes(self):
        return {("GET", PATH): self.verify, ("POST", PATH): self.receive}

    def _reject(self, status: int, reason: str, error: str, body: bytes) -> Response:
        self.inbox.dead_letter(reason, error, body)
        self.rejected += 1
        log.warning("tenant %s: WeCom callback rejected (%s: %s; body sha256 %s, %d bytes)", self.tenant_id, reason,
                    error, hashlib.sha256(body).hexdigest()[:16], len(body))
        return _text(status, reason)

    def verify(self, request: Request) -> Response:
        q = request.query
        echostr = q.get("echostr", "")
        try:
            plain = self.crypto.verify_url(q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""),
                                           echostr)
        except SignatureMismatch as exc:
            return self._reject(403, "bad_signature", str(exc), echostr.encode())
        except ValueError as exc:
            return self._reject(400, "undecryptable", str(exc), echostr.encode())
        return _text(200, plain)   # the bare plaintext: no quotes, BOM or newline

    def receive(self, request: Request) -> Response:
        q, body = request.query, request.body
        try:
            inner = self.crypto.decrypt_message(q.get("msg_signature", ""), q.get("timestamp", ""),
                                                q.get("nonce", ""), body)
        except SignatureMismatch as exc:
            return self._reject(403, "bad_signature", str(exc), body)
        except ValueError as exc:
            return self._reject(400, "undecryptable", str(exc), body)
        try:
            event = parse_event(inner)
        except CallbackError as exc:  # authentic but not an org change: acknowledged (no retries), kept aside
            self._reject(400, "unsupported_event", str(exc), body)
            return _text(200, "success")
        if self.inbox.append(event):
            self.stored += 1
            log.info("tenant %s: WeCom %s/%s stored (event %s)", self.tenant_id, event.event, event.change_type,
                     event.event_id)
        else:
            self.duplicates += 1
        return _text(200, "success")
