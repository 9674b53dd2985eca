"""WeCom callback crypto against the checked test vector in domain-notes §1.9."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fincdp.wecom_crypto import WeComCrypto

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "testtoken123"
CORPID = "ww0000000000000001"
TIMESTAMP, NONCE = "1700000000", "98765"
ECHOSTR = "Q3stYC6hdFzMh9T8HCvyDOFedLuAGmKNBQhvVrPwG/l4yWQEkvsSAP6ZgBMnTH4NBlw8cJHXKwaNI0CMG+P11A=="
SIGNATURE = "e5b90ddc511051c34bfca1e139d3088961c277b0"


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, KEY, CORPID)


def test_vector_encrypt_and_signature(crypto):
    encrypt = crypto.encrypt("1234567890123456", random16=b"0123456789abcdef")
    assert encrypt == ECHOSTR
    assert crypto.signature(TIMESTAMP, NONCE, encrypt) == SIGNATURE


def test_vector_verify_url(crypto):
    assert crypto.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR) == "1234567890123456"


def test_round_trip_message(crypto):
    inner = ("<xml><ToUserName><![CDATA[ww0000000000000001]]></ToUserName><Event><![CDATA[change_contact]]>"
             "</Event><ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[赵敏]]></UserID></xml>")
    encrypt = crypto.encrypt(inner)
    envelope = (f"<xml><ToUserName><![CDATA[{CORPID}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    signature = crypto.signature("1700000001", "abc", encrypt)
    assert crypto.decrypt_message(signature, "1700000001", "abc", envelope.encode()) == inner


@pytest.mark.parametrize("size", [0, 10, 25, 26, 27, 1000])
def test_round_trip_padding_lengths(crypto, size):  # 38 + size bytes: pads of 26, 16, 1, 32, 31, 18
    msg = "x" * size
    assert crypto.decrypt(crypto.encrypt(msg)) == msg


def test_bad_signature(crypto):
    with pytest.raises(ValueError, match="msg_signature mismatch"):
        crypto.verify_url("0" * 40, TIMESTAMP, NONCE, ECHOSTR)
    envelope = f"<xml><Encrypt>{ECHOSTR}</Encrypt></xml>"
    with pytest.raises(ValueError, match="msg_signature mismatch"):
        crypto.decrypt_message(SIGNATURE, TIMESTAMP, "other-nonce", envelope)


def test_wrong_corpid():
    other = WeComCrypto(TOKEN, KEY, "ww0000000000000002")
    with pytest.raises(ValueError, match="receive_id mismatch"):
        other.verify_url(SIGNATURE, TIMESTAMP, NONCE, ECHOSTR)


def _raw_encrypt(plain: bytes) -> str:
    key = base64.b64decode(KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def test_bad_padding(crypto):
    body = b"0123456789abcdef" + (16).to_bytes(4, "big") + b"1234567890123456" + CORPID.encode()
    # 54 bytes, so the valid pad is ten 0x0a bytes; a value over 32, an uneven run or zero must fail
    for pad in (bytes([33]) * 10, bytes([10]) * 9 + bytes([11]), bytes([0]) * 10):
        with pytest.raises(ValueError, match="padding"):
            crypto.decrypt(_raw_encrypt(body + pad))
    assert crypto.decrypt(_raw_encrypt(body + bytes([10]) * 10)) == "1234567890123456"


def test_rejects_garbage(crypto):
    with pytest.raises(ValueError):
        crypto.decrypt("not base64!!")
    with pytest.raises(ValueError, match="no <Encrypt>"):
        crypto.decrypt_message(SIGNATURE, TIMESTAMP, NONCE, "<xml><AgentID>1</AgentID></xml>")
    with pytest.raises(ValueError, match="not XML"):
        crypto.decrypt_message(SIGNATURE, TIMESTAMP, NONCE, "<xml>")
    with pytest.raises(ValueError, match="43 characters"):
        WeComCrypto(TOKEN, KEY[:-1], CORPID)
