"""The service's own secrets: its Ed25519 signing key and a master key that seals the
augmentation secrets and escrow halves at rest. Kept in one file (mode 0600) that every
worker process reads, created once with O_EXCL."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.signing import SigningKey
from sealroom.errors import DecryptionError, MalformedInputError

__all__ = ["ServiceKeys"]

_AAD = b"sealroom/v1/keyservice/at-rest/"


def _fsync_folder(folder: Path) -> None:
    """Make a new directory entry durable (Linux); skipped where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ServiceKeys:
    signing_key: SigningKey
    master_key: bytes

    @classmethod
    def generate(cls) -> ServiceKeys:
        return cls(SigningKey.generate(), AESGCM.generate_key(bit_length=256))

    @classmethod
    def load_or_create(cls, path: Path) -> ServiceKeys:
        """Read the secrets file, or create it (0600) if it does not exist yet.

        Created atomically: the keys are written to a temporary file beside it, flushed to
        disk (``fsync``), then linked into place, which fails if another worker got there
        first (its file is read instead); the folder is flushed too. A crash at any point
        leaves either no file or a whole one, never an empty or partial one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            return cls._read(path)
        keys = cls.generate()
        data = json.dumps(
            {
                "version": 1,
                "signing_key": b64e(keys.signing_key.expose_secret_bytes()),
                "master_key": b64e(keys.master_key),
            }
        ).encode()
        partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(partial, path)  # atomic, and never replaces a file already there
            except FileExistsError:
                return cls._read(path)
            _fsync_folder(path.parent)
        finally:
            partial.unlink(missing_ok=True)
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
        """Parse the file; an empty, truncated or altered one is a MalformedInputError
        (files are written whole, so there is nothing to wait for)."""
        text = path.read_text()
        if not text.strip():
            raise MalformedInputError(f"service secrets file {path} is empty")
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != 1:
                raise MalformedInputError("service secrets file: unsupported version")
            master = b64d(data["master_key"], "master_key")
            signing = b64d(data["signing_key"], "signing_key")
        except (ValueError, KeyError, TypeError):
            raise MalformedInputError(f"service secrets file {path} is not whole") from None
        if len(master) != 32:
            raise MalformedInputError("service secrets file: master key must be 32 bytes")
        return cls(SigningKey(signing), master)

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
