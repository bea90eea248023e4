"""The service's own secrets: its Ed25519 signing key and a master key that seals the
augmentation secrets and escrow halves at rest. Kept in one file (mode 0600) that every
worker process reads, created once with O_EXCL."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.signing import SigningKey
from sealroom.errors import DecryptionError, MalformedInputError

__all__ = ["ServiceKeys"]

_AAD = b"sealroom/v1/keyservice/at-rest/"


@dataclass(frozen=True)
class ServiceKeys:
    signing_key: SigningKey
    master_key: bytes

    @classmethod
    def generate(cls) -> ServiceKeys:
        return cls(SigningKey.generate(), AESGCM.generate_key(bit_length=256))

    @classmethod
    def load_or_create(cls, path: Path) -> ServiceKeys:
        """Read the secrets file, or create it (0600) if it does not exist yet."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._read(path)
        keys = cls.generate()
        with os.fdopen(fd, "w") as f:
            json.dump(
                {
                    "version": 1,
                    "signing_key": b64e(keys.signing_key.expose_secret_bytes()),
                    "master_key": b64e(keys.master_key),
                },
                f,
            )
        return keys

    @classmethod
    def load(cls, path: Path) -> ServiceKeys:
        """Read an existing secrets file; never create one (FileNotFoundError if absent).
        For tools such as ``audit verify``, where fresh keys would only hide a typo."""
        if not path.is_file():
            raise FileNotFoundError(str(path))
        return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> ServiceKeys:
        for _ in range(50):  # another worker may be writing it right now
            text = path.read_text()
            if text:
                break
            time.sleep(0.05)
        data = json.loads(text)
        if data.get("version") != 1:
            raise MalformedInputError("service secrets file: unsupported version")
        master = b64d(data["master_key"], "master_key")
        if len(master) != 32:
            raise MalformedInputError("service secrets file: master key must be 32 bytes")
        return cls(SigningKey(b64d(data["signing_key"], "signing_key")), master)

    def seal(self, purpose: str, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.master_key).encrypt(nonce, data, _AAD + purpose.encode())

    def open(self, purpose: str, sealed: bytes) -> bytes:
        try:
            return AESGCM(self.master_key).decrypt(
                sealed[:12], sealed[12:], _AAD + purpose.encode()
            )
        except (InvalidTag, ValueError):
            raise DecryptionError() from None
