"""SFrame (RFC 9605): the header, the five cipher suites, and the §4.4 context.

:class:`SFrameContext` mirrors the RFC's API. Its ``encrypt`` takes the caller's counter,
so it is a *hazardous* primitive: reusing a (KID, CTR) pair reuses a nonce. Applications
use :mod:`sealroom.media.keys`, whose senders own their counters.

**Header policy.** Encoding is always minimal (RFC 9605 §4.3). When decoding, a header that
is not minimally encoded — a KID or CTR below 8 written in extended form, or an extended
value with a leading zero byte — is rejected like any other malformed frame, so every
(KID, CTR) has exactly one header and one AAD.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from sealroom.errors import SealroomError

__all__ = [
    "CIPHER_SUITES",
    "COPY_LIMIT",
    "MAX_VALUE",
    "CipherSuite",
    "SFrameContext",
    "SFrameError",
    "aead_decrypt",
    "aead_encrypt",
    "decode_header",
    "encode_header",
    "header_prefix",
    "header_table",
    "hkdf_extract",
]

MAX_VALUE: Final[int] = (1 << 64) - 1
#: Below this many bytes, slicing a frame's body (a copy) is cheaper than a memoryview.
COPY_LIMIT: Final[int] = 4096


class SFrameError(SealroomError):
    """A frame could not be produced or opened. Deliberately says nothing about why."""


@dataclass(frozen=True)
class CipherSuite:
    """RFC 9605 §4.5 parameters: hash, key and nonce sizes, tag length, AEAD kind."""

    id: int
    name: str
    hash_name: str  # "sha256" or "sha512"
    nk: int
    nn: int
    nt: int
    ctr_hmac: bool  # AES-CTR + HMAC (suites 1-3) or AES-GCM (4-5)
    nka: int = 0  # AES key length inside nk for CTR+HMAC suites


CIPHER_SUITES: Final[dict[int, CipherSuite]] = {
    1: CipherSuite(1, "AES_128_CTR_HMAC_SHA256_80", "sha256", 48, 12, 10, True, 16),
    2: CipherSuite(2, "AES_128_CTR_HMAC_SHA256_64", "sha256", 48, 12, 8, True, 16),
    3: CipherSuite(3, "AES_128_CTR_HMAC_SHA256_32", "sha256", 48, 12, 4, True, 16),
    4: CipherSuite(4, "AES_128_GCM_SHA256_128", "sha256", 16, 12, 16, False),
    5: CipherSuite(5, "AES_256_GCM_SHA512_128", "sha512", 32, 12, 16, False),
}


def encode_header(kid: int, ctr: int) -> bytes:
    """The minimal SFrame header for (KID, CTR)."""
    if not (0 <= kid <= MAX_VALUE and 0 <= ctr <= MAX_VALUE):
        raise SFrameError("KID and CTR must be 64-bit unsigned integers")
    return header_prefix(kid)(ctr)


def header_table(kid: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """Precomputed header parts for one KID: ``small[ctr]`` is the whole header for a
    CTR below 8, and ``extended[n] + ctr.to_bytes(n, "big")`` for a CTR of ``n`` bytes."""
    if kid < 8:
        first, kid_bytes = kid << 4, b""
    else:
        n = (kid.bit_length() + 7) >> 3
        first, kid_bytes = 0x80 | (n - 1) << 4, kid.to_bytes(n, "big")
    small = tuple(bytes((first | c,)) + kid_bytes for c in range(8))
    extended = (b"", *(bytes((first | 0x08 | (n - 1),)) + kid_bytes for n in range(1, 9)))
    return small, extended


def header_prefix(kid: int) -> Callable[[int], bytes]:
    """A fast encoder of headers for one KID: ``ctr -> header``."""
    small, extended = header_table(kid)

    def encode(ctr: int) -> bytes:
        if ctr < 8:
            return small[ctr]
        n = (ctr.bit_length() + 7) >> 3
        return extended[n] + ctr.to_bytes(n, "big")

    return encode


def decode_header(data: bytes) -> tuple[int, int, int]:
    """(KID, CTR, header length). Rejects truncated and non-minimal headers."""
    if not data:
        raise SFrameError("empty frame")
    first = data[0]
    pos = 1
    if first & 0x80:
        n = ((first >> 4) & 0x07) + 1
        kid = int.from_bytes(data[1 : 1 + n], "big")
        if len(data) < 1 + n or kid < 8 or data[1] == 0:
            raise SFrameError("truncated or non-minimal header")
        pos += n
    else:
        kid = (first >> 4) & 0x07
    if first & 0x08:
        n = (first & 0x07) + 1
        ctr = int.from_bytes(data[pos : pos + n], "big")
        if len(data) < pos + n or ctr < 8 or data[pos] == 0:
            raise SFrameError("truncated or non-minimal header")
        pos += n
    else:
        ctr = first & 0x07
    return kid, ctr, pos


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): HMAC(salt or zeros, ikm)."""
    size = hashlib.new(hash_name).digest_size
    return hmac.new(salt or bytes(size), ikm, hash_name).digest()


def _hash(name: str) -> hashes.HashAlgorithm:
    return hashes.SHA256() if name == "sha256" else hashes.SHA512()


class _Key:
    """One KID's derived key material and a ready AEAD."""

    __slots__ = ("auth_key", "cipher_key", "gcm", "salt")

    def __init__(self, suite: CipherSuite, kid: int, base_key: bytes) -> None:
        secret = hkdf_extract(suite.hash_name, b"", base_key)
        suffix = struct.pack(">QH", kid, suite.id)
        key = HKDFExpand(
            _hash(suite.hash_name), suite.nk, b"SFrame 1.0 Secret key " + suffix
        ).derive(secret)
        salt = HKDFExpand(
            _hash(suite.hash_name), suite.nn, b"SFrame 1.0 Secret salt " + suffix
        ).derive(secret)
        self.salt = int.from_bytes(salt, "big")
        if suite.ctr_hmac:
            self.cipher_key, self.auth_key = key[: suite.nka], key[suite.nka :]
            self.gcm: AESGCM | None = None
        else:
            self.cipher_key, self.auth_key = key, b""
            self.gcm = AESGCM(key)


def _ctr_hmac_tag(suite: CipherSuite, key: _Key, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
    lengths = struct.pack(">QQQ", len(aad), len(ct), suite.nt)
    mac = hmac.new(key.auth_key, lengths + nonce + aad + ct, suite.hash_name).digest()
    return mac[: suite.nt]


def _aes_ctr(key: _Key, nonce: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key.cipher_key), modes.CTR(nonce + bytes(4))).encryptor()
    return enc.update(data) + enc.finalize()


def aead_encrypt(suite: CipherSuite, key: _Key, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
    if key.gcm is not None:
        return key.gcm.encrypt(nonce, pt, aad)
    ct = _aes_ctr(key, nonce, pt)
    return ct + _ctr_hmac_tag(suite, key, nonce, aad, ct)


def aead_decrypt(suite: CipherSuite, key: _Key, nonce: bytes, aad: bytes, data: bytes) -> bytes:
    if len(data) < suite.nt:
        raise SFrameError("frame shorter than its tag")
    if key.gcm is not None:
        try:
            return key.gcm.decrypt(nonce, data, aad)
        except InvalidTag:
            raise SFrameError("authentication failed") from None
    ct, tag = data[: -suite.nt], data[-suite.nt :]
    if not hmac.compare_digest(tag, _ctr_hmac_tag(suite, key, nonce, aad, ct)):
        raise SFrameError("authentication failed")
    return _aes_ctr(key, nonce, ct)


class SFrameContext:
    """RFC 9605 §4.4: keys by KID, ``encrypt(ctr, kid, metadata, pt)``, ``decrypt``."""

    def __init__(self, cipher_suite: int) -> None:
        if cipher_suite not in CIPHER_SUITES:
            raise ValueError(f"unknown SFrame cipher suite {cipher_suite}")
        self.suite = CIPHER_SUITES[cipher_suite]
        self._encrypt_keys: dict[int, _Key] = {}
        self._encoders: dict[int, Callable[[int], bytes]] = {}
        self._decrypt_keys: dict[int, _Key] = {}

    def add_encrypt_key(self, kid: int, base_key: bytes) -> None:
        if not 0 <= kid <= MAX_VALUE:
            raise SFrameError("KID must be a 64-bit unsigned integer")
        self._encrypt_keys[kid] = _Key(self.suite, kid, base_key)
        self._encoders[kid] = header_prefix(kid)

    def add_decrypt_key(self, kid: int, base_key: bytes) -> None:
        self._decrypt_keys[kid] = _Key(self.suite, kid, base_key)

    def remove_encrypt_key(self, kid: int) -> None:
        self._encrypt_keys.pop(kid, None)
        self._encoders.pop(kid, None)

    def remove_decrypt_key(self, kid: int) -> None:
        self._decrypt_keys.pop(kid, None)

    def has_decrypt_key(self, kid: int) -> bool:
        return kid in self._decrypt_keys

    def encrypt(self, ctr: int, kid: int, metadata: bytes, plaintext: bytes) -> bytes:
        """Hazardous: the caller must never reuse ``ctr`` under ``kid``."""
        key = self._encrypt_keys.get(kid)
        if key is None:
            raise SFrameError("no encryption key for this KID")
        if not 0 <= ctr <= MAX_VALUE:
            raise SFrameError("CTR must be a 64-bit unsigned integer")
        header = self._encoders[kid](ctr)
        nonce = (key.salt ^ ctr).to_bytes(12, "big")
        if key.gcm is not None:
            return header + key.gcm.encrypt(nonce, plaintext, header + metadata)
        return header + aead_encrypt(self.suite, key, nonce, header + metadata, plaintext)

    def decrypt(self, metadata: bytes, ciphertext: bytes) -> bytes:
        kid, ctr, header_len = decode_header(ciphertext)
        return self.decrypt_parsed(kid, ctr, header_len, metadata, ciphertext)

    @staticmethod
    def parse(ciphertext: bytes) -> tuple[int, int, int]:
        """(KID, CTR, header length) of a frame, without decrypting it."""
        return decode_header(ciphertext)

    def decrypt_parsed(
        self, kid: int, ctr: int, header_len: int, metadata: bytes, ciphertext: bytes
    ) -> bytes:
        """Decrypt a frame whose header :func:`decode_header` already parsed."""
        key = self._decrypt_keys.get(kid)
        if key is None:
            raise SFrameError("no decryption key for this KID")
        nonce = (key.salt ^ ctr).to_bytes(12, "big")
        aad = ciphertext[:header_len] + metadata
        if key.gcm is not None:
            body = (
                ciphertext[header_len:]
                if len(ciphertext) < COPY_LIMIT
                else memoryview(ciphertext)[header_len:]
            )
            try:
                return key.gcm.decrypt(nonce, body, aad)
            except InvalidTag:
                raise SFrameError("authentication failed") from None
        return aead_decrypt(self.suite, key, nonce, aad, ciphertext[header_len:])
