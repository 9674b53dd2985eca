"""Change callbacks of the local WeCom server: admin changes to a corp's org are pushed, signed and encrypted
as WeCom does (WXBizMsgCrypt), to the callback URL registered for that corp.

The event XML has the shapes of WeCom's 通讯录变更事件 (`change_contact`: create/update/delete_user with
UserID, NewUserID, Name, Department "1,2", MainDepartment, IsLeaderInDept "1,0", DirectLeader "a,b",
Position, Mobile, Email, Status; create/update/delete_party with Id, Name, ParentId, Order) as sent to URLs
configured before 2022-08-15 (later URLs get only the ids: the receiver must not rely on the rest).
Registration checks the URL first (GET with echostr, answered with the bare plaintext); a delivery that
does not answer 200 within 5 s is retried up to 3 times, as WeCom does.
"""
from __future__ import annotations

import secrets
import threading
import time

import requests

from fincdp.wecom_crypto import WeComCrypto

TIMEOUT_S = 5.0
RETRIES = 3
# user/get fields -> callback elements, in WeCom's order
USER_FIELDS = (("name", "Name"), ("department", "Department"), ("main_department", "MainDepartment"),
               ("is_leader_in_dept", "IsLeaderInDept"), ("direct_leader", "DirectLeader"), ("position", "Position"),
               ("mobile", "Mobile"), ("gender", "Gender"), ("email", "Email"), ("status", "Status"),
               ("alias", "Alias"), ("telephone", "Telephone"))
PARTY_FIELDS = (("name", "Name"), ("parentid", "ParentId"), ("order", "Order"))


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(tag: str, value) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return f"<{tag}>{value}</{tag}>"
    return f"<{tag}>{_cdata(str(value))}</{tag}>"


def event_xml(corpid: str, event: str, change_type: str, fields: list[tuple[str, object]], create_time: int) -> str:
    head = [("ToUserName", corpid), ("FromUserName", "sys"), ("CreateTime", int(create_time)), ("MsgType", "event"),
            ("Event", event), ("ChangeType", change_type)]
    return "<xml>" + "".join(_element(t, v) for t, v in [*head, *fields] if v is not None) + "</xml>"


def user_fields(userid: str, user: dict | None, new_userid: str | None = None) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("UserID", userid)]
    if new_userid and new_userid != userid:
        out.append(("NewUserID", new_userid))
    for key, tag in USER_FIELDS if user else ():
        if user.get(key) not in (None, ""):
            out.append((tag, user[key]))
    return out


def party_fields(dept_id: int, dept: dict | None) -> list[tuple[str, object]]:
    return [("Id", int(dept_id)), *((tag, dept[key]) for key, tag in PARTY_FIELDS if dept and dept.get(key) is not None)]


class CallbackSender:
    """Registered callback URLs per corp, and every delivery attempt (corpid, change_type, status)."""

    def __init__(self):
        self._targets: dict[str, tuple[str, WeComCrypto, str]] = {}
        self._lock = threading.Lock()
        self.deliveries: list[tuple[str, str, int]] = []

    def register(self, corpid: str, url: str, token: str, encoding_aes_key: str, agent_id: str = "1000001") -> None:
        """Check the URL as WeCom does before it saves it: the receiver must echo the decrypted echostr."""
        crypto = WeComCrypto(token, encoding_aes_key, corpid)
        plain = secrets.token_hex(8)
        echostr, timestamp, nonce = crypto.encrypt(plain), str(int(time.time())), secrets.token_hex(4)
        resp = requests.get(url, params={"msg_signature": crypto.signature(timestamp, nonce, echostr),
                                         "timestamp": timestamp, "nonce": nonce, "echostr": echostr}, timeout=1.0)
        if resp.status_code != 200 or resp.text != plain:
            raise ValueError(f"callback URL check failed for corp {corpid}: HTTP {resp.status_code}")
        with self._lock:
            self._targets[corpid] = (url, crypto, agent_id)

    def registered(self, corpid: str) -> bool:
        return corpid in self._targets

    def send(self, corpid: str, change_type: str, inner_xml: str) -> int | None:
        """POST one event; the last HTTP status (None: no URL registered, or no answer)."""
        target = self._targets.get(corpid)
        if target is None:
            return None
        url, crypto, agent_id = target
        encrypt = crypto.encrypt(inner_xml)
        body = (f"<xml><ToUserName>{_cdata(corpid)}</ToUserName><AgentID>{_cdata(agent_id)}</AgentID>"
                f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>").encode()
        status = None
        for _ in range(1 + RETRIES):
            timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
            params = {"msg_signature": crypto.signature(timestamp, nonce, encrypt), "timestamp": timestamp,
                      "nonce": nonce}
            try:
                status = requests.post(url, params=params, data=body, timeout=TIMEOUT_S,
                                       headers={"Content-Type": "text/xml"}).status_code
            except requests.RequestException:
                status = None
            with self._lock:
                self.deliveries.append((corpid, change_type, status or 0))
            if status == 200:
                break
        return status
