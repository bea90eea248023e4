"""Board messages: versioned, signed by the posting device, parsed strictly.

Wire form (UTF-8 JSON object): ``{"v": 1, "meeting", "kind", "user", "device", "seq",
"body", "sig"}``. The signature is Ed25519, under its own label, over the canonical JSON
(sorted keys, no spaces) of every field but ``sig``. ``seq`` increases with every message a
device posts, so receivers drop duplicates and spot replays.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import MalformedInputError

__all__ = [
    "KINDS",
    "LABEL",
    "MAX_MESSAGE_BYTES",
    "VERSION",
    "BoardMessage",
]

VERSION: Final[int] = 1
LABEL: Final[bytes] = b"sealroom/v1/sig/meeting-message"
MAX_MESSAGE_BYTES: Final[int] = 64 * 1024
_ID: Final = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
KINDS: Final[frozenset[str]] = frozenset(
    {
        "start",
        "announce",
        "session-key",
        "roster",
        "roster-request",
        "leave",
        "remove",
        "admit",
        "manager",
        "end",
        "tree",
        "tree-path",
    }
)


@dataclass(frozen=True)
class BoardMessage:
    """One message on a meeting's channel."""

    meeting: str
    kind: str
    user: str
    device: str
    seq: int
    body: dict[str, Any]
    signature: bytes = b""

    def _fields(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "meeting": self.meeting,
            "kind": self.kind,
            "user": self.user,
            "device": self.device,
            "seq": self.seq,
            "body": self.body,
        }

    def _signed(self) -> bytes:
        return json.dumps(self._fields(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def create(
        cls,
        key: SigningKey,
        *,
        meeting: str,
        kind: str,
        user: str,
        device: str,
        seq: int,
        body: dict[str, Any],
    ) -> BoardMessage:
        unsigned = cls(meeting, kind, user, device, seq, body)
        return cls(meeting, kind, user, device, seq, body, key.sign(LABEL, unsigned._signed()))

    def verify(self, key: VerifyingKey) -> None:
        """Raise SignatureError unless ``key`` signed this message."""
        key.verify(LABEL, self._signed(), self.signature)

    def to_json(self) -> str:
        fields = self._fields() | {"sig": b64e(self.signature)}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> BoardMessage:
        if len(text) > MAX_MESSAGE_BYTES:
            raise MalformedInputError("board message: too large")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise MalformedInputError("board message: not JSON") from None
        if not isinstance(data, dict) or set(data) != {
            "v",
            "meeting",
            "kind",
            "user",
            "device",
            "seq",
            "body",
            "sig",
        }:
            raise MalformedInputError("board message: wrong fields")
        if data["v"] != VERSION:
            raise MalformedInputError(f"board message: unsupported version {data['v']!r}")
        if not isinstance(data["kind"], str) or data["kind"] not in KINDS:
            raise MalformedInputError("board message: unknown kind")
        for name in ("meeting", "user", "device"):
            if not isinstance(data[name], str) or not _ID.fullmatch(data[name]):
                raise MalformedInputError(f"board message: bad {name}")
        if (
            not isinstance(data["seq"], int)
            or isinstance(data["seq"], bool)
            or not (0 <= data["seq"] < 1 << 53)
        ):
            raise MalformedInputError("board message: bad seq")
        if not isinstance(data["body"], dict):
            raise MalformedInputError("board message: body must be an object")
        signature = b64d(data["sig"], "sig", max_bytes=64)
        return cls(
            data["meeting"],
            data["kind"],
            data["user"],
            data["device"],
            data["seq"],
            data["body"],
            signature,
        )
