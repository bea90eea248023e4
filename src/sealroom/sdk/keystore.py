"""The device's local keystore: one JSON file, mode 0600, written atomically.

It holds this device's private keys (which never leave it) and the keys the device has
pinned: the key service's signing key and every user's public keys seen so far.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.pre import PrivateKey
from sealroom.crypto.signing import SigningKey
from sealroom.errors import MalformedInputError
from sealroom.sdk.errors import KeystoreError

__all__ = ["VERSION", "Keystore", "PinnedUser"]

VERSION = 1


@dataclass
class PinnedUser:
    public_key: bytes
    signing_key: bytes


@dataclass
class Keystore:
    """What a device keeps between runs."""

    path: Path
    user_id: str | None = None
    device_id: str | None = None
    device_name: str = ""
    device_key: PrivateKey | None = None
    signing_key: SigningKey | None = None
    registered: bool = False
    service_key: bytes | None = None
    pinned: dict[str, PinnedUser] = field(default_factory=dict)
    pinned_groups: dict[str, bytes] = field(default_factory=dict)
    #: Who the application says runs a group: its key is accepted only if one of them
    #: vouches for it (see Client.expect_group_admins).
    group_admins: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Keystore:
        if not path.exists():
            return cls(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeystoreError(f"keystore {path} must not be readable by others (mode 0600)")
        data: dict[str, Any] = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise MalformedInputError("keystore: unsupported version")
        ks = cls(path, data.get("user_id"), data.get("device_id"), data.get("device_name", ""))
        if data.get("device_key"):
            ks.device_key = PrivateKey.from_secret_bytes(b64d(data["device_key"], "device_key"))
        if data.get("signing_key"):
            ks.signing_key = SigningKey(b64d(data["signing_key"], "signing_key"))
        ks.registered = bool(data.get("registered"))
        ks.service_key = (
            b64d(data["service_key"], "service_key") if data.get("service_key") else None
        )
        ks.pinned = {
            u: PinnedUser(b64d(v["public_key"], "public_key"), b64d(v["signing_key"], "key"))
            for u, v in data.get("pinned", {}).items()
        }
        ks.pinned_groups = {
            g: b64d(k, "group key") for g, k in data.get("pinned_groups", {}).items()
        }
        ks.group_admins = {
            g: [str(u) for u in users] for g, users in data.get("group_admins", {}).items()
        }
        return ks

    def save(self) -> None:
        data = {
            "version": VERSION,
            "user_id": self.user_id,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "device_key": b64e(self.device_key.expose_secret_bytes()) if self.device_key else None,
            "signing_key": b64e(self.signing_key.expose_secret_bytes())
            if self.signing_key
            else None,
            "registered": self.registered,
            "service_key": b64e(self.service_key) if self.service_key else None,
            "pinned_groups": {g: b64e(k) for g, k in self.pinned_groups.items()},
            "group_admins": self.group_admins,
            "pinned": {
                u: {"public_key": b64e(p.public_key), "signing_key": b64e(p.signing_key)}
                for u, p in self.pinned.items()
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)
