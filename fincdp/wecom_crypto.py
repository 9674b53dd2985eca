"""WeCom callback crypto (WXBizMsgCrypt): signatures, AES-256-CBC with 32-byte PKCS#7 padding.

Plaintext layout: random(16) | msg_len (4 bytes, big-endian) | msg | receive_id (the corpid).
See domain-notes §1.9 and WeCom document/path/91144.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not the AES block size


class SignatureMismatch(ValueError):
    """msg_signature does not match: the request did not come from someone holding the Token."""


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        if len(encoding_aes_key) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        self.token, self.receive_id = token, receive_id
        self._key = base64.b64decode(encoding_aes_key + "=")

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        parts = sorted([self.token, str(timestamp), str(nonce), encrypt])
        return hashlib.sha1("".join(parts).encode()).hexdigest()

    def encrypt(self, msg: str, *, random16: bytes | None = None) -> str:
        random16 = os.urandom(16) if random16 is None else random16
        if len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        body = msg.encode()
        plain = random16 + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def decrypt(self, encrypt: str) -> str:
        try:
            data = base64.b64decode(encrypt, validate=True)
        except binascii.Error as exc:
            raise ValueError("Encrypt is not valid base64") from exc
        if not data or len(data) % 16:
            raise ValueError("Encrypt length is not a multiple of the AES block size")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise ValueError("bad PKCS#7 padding (wrong EncodingAESKey?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise ValueError("decrypted message too short")
        (size,) = struct.unpack(">I", plain[16:20])
        if 20 + size > len(plain):
            raise ValueError("message length field exceeds the decrypted data")
        msg, receive_id = plain[20:20 + size], plain[20 + size:]
        if receive_id.decode(errors="replace") != self.receive_id:
            raise ValueError(f"receive_id mismatch: message is for {receive_id.decode(errors='replace')!r}, "
                             f"expected {self.receive_id!r}")
        return msg.decode()

    def _check(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, msg_signature.lower()):
            raise SignatureMismatch("msg_signature mismatch")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer to the GET URL check: the bare decrypted echostr."""
        self._check(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, xml_body: str | bytes) -> str:
        """Decrypt a POSTed `<xml>…<Encrypt>…</Encrypt></xml>` envelope; returns the inner XML."""
        try:
            encrypt = ET.fromstring(xml_body).findtext("Encrypt")
        except ET.ParseError as exc:
            raise ValueError(f"callback body is not XML: {exc}") from exc
        if not encrypt:
            raise ValueError("callback body has no <Encrypt> element")
        self._check(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)
