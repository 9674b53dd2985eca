"""`fincdp bench callbacks`: how fast the callback receiver acknowledges (WeCom waits 5 s, then retries).

Sequential signed, encrypted update_user callbacks over HTTP keep-alive into a throwaway inbox: each
answer includes the signature check, the decryption and the inbox's fsync'd commit.
"""
from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time

import requests

from fincdp.boss.callbacks import CallbackInbox, last_seq
from fincdp.boss.receiver import CallbackReceiver
from fincdp.localsaas.wecom_callbacks import event_xml, user_fields
from fincdp.wecom_crypto import WeComCrypto

CORP = "wwbench000000000001"


def run(n: int = 300) -> str:
    key = secrets.token_urlsafe(32)[:43].replace("-", "A").replace("_", "B")
    crypto = WeComCrypto("benchtoken", key, CORP)
    with tempfile.TemporaryDirectory(prefix="fincdp-bench-callbacks-") as home:
        old = os.environ.get("FINCDP_HOME")
        os.environ["FINCDP_HOME"] = home
        try:
            inbox = CallbackInbox("bench")
            receiver = CallbackReceiver("bench", crypto, inbox).start()
            latencies = []
            with requests.Session() as http:
                for i in range(n):
                    xml = event_xml(CORP, "change_contact", "update_user",
                                    user_fields(f"u{i}", {"position": "经理", "department": [1, 2],
                                                          "direct_leader": ["boss"]}), 1764200000 + i)
                    encrypt, ts, nonce = crypto.encrypt(xml), str(int(time.time())), secrets.token_hex(4)
                    body = f"<xml><ToUserName>{CORP}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
                    start = time.perf_counter()
                    resp = http.post(receiver.callback_url, data=body, params={
                        "msg_signature": crypto.signature(ts, nonce, encrypt), "timestamp": ts, "nonce": nonce})
                    latencies.append(time.perf_counter() - start)
                    if resp.status_code != 200:
                        raise RuntimeError(f"callback {i} answered HTTP {resp.status_code}")
            receiver.stop()
            inbox.close()
            stored = last_seq("bench")
        finally:
            if old is None:
                os.environ.pop("FINCDP_HOME", None)
            else:
                os.environ["FINCDP_HOME"] = old
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return (f"{n} callbacks, {stored} stored: median {statistics.median(ms):.1f} ms, "
            f"p99 {ms[max(0, int(len(ms) * 0.99) - 1)]:.1f} ms, max {ms[-1]:.1f} ms")
