"""The SDK's typed arguments and results: who a grant is for, and what the service lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AuditReport", "Device", "Grant", "GroupInfo", "Target"]


@dataclass(frozen=True)
class Target:
    """A user or a group: whom a document is granted to or revoked from, or whom an
    unmanaged EDEK is for. Make one with ``Target.user("bob")`` or ``Target.group("team")``."""

    kind: Literal["user", "group"]
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("user", "group"):
            raise ValueError("a target's kind is 'user' or 'group'")
        if not isinstance(self.id, str) or not self.id:
            raise TypeError("a target's id is a non-empty str")

    @classmethod
    def user(cls, user_id: str) -> Target:
        return cls("user", user_id)

    @classmethod
    def group(cls, group_id: str) -> Target:
        return cls("group", group_id)


@dataclass(frozen=True)
class Grant:
    """One grant of a managed document: to ``target``, made by user ``granted_by`` at
    ``granted_at`` (Unix seconds)."""

    target: Target
    granted_by: str
    granted_at: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grant:
        return cls(
            Target(data["grantee_kind"], str(data["grantee_id"])),
            str(data["granted_by"]),
            int(data["granted_at"]),
        )


@dataclass(frozen=True)
class Device:
    """One of the user's devices as the key service lists it. Times are Unix seconds;
    ``revoked_at`` is None for a device in use. Keys and certificate are base64url."""

    id: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None
    signing_key: str
    public_key: str
    certificate: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Device:
        return cls(
            str(data["id"]),
            str(data["name"]),
            int(data["created_at"]),
            data.get("last_used_at"),
            data.get("revoked_at"),
            str(data["signing_key"]),
            str(data["public_key"]),
            str(data["certificate"]),
        )


@dataclass(frozen=True)
class AuditReport:
    """The key service's check of its audit chain. ``ok``: the chain holds (and extends the
    head the caller kept, if it passed one). ``head_token``: the service's signed head, to
    keep outside the service (None unless ``ok``). ``first_bad_seq`` and ``reason`` say
    where and why the check failed."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    head_signature: str | None
    head_token: str | None
    first_bad_seq: int | None
    reason: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditReport:
        return cls(
            bool(data["ok"]),
            int(data["entries"]),
            int(data["head_seq"]),
            str(data["head_hash"]),
            data.get("head_signature"),
            data.get("head_token"),
            data.get("first_bad_seq"),
            data.get("reason"),
        )


@dataclass(frozen=True)
class GroupInfo:
    """A group as the key service shows it. Anyone sees ``id``, ``public_key`` (base64url),
    ``admins``, the admin statement vouching for the key and ``forward_only`` (a meeting's
    group); its members and admins also see the rest, which is None for anyone else.
    ``manager``: a forward-only group's manager (None when it has none)."""

    id: str
    public_key: str
    admins: list[str]
    key_statement: str | None
    key_statement_device: str | None
    forward_only: bool
    members: list[str] | None = None
    preapproved: list[str] | None = None
    banned: list[str] | None = None
    created_by: str | None = None
    manager: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupInfo:
        def names(key: str) -> list[str] | None:
            value = data.get(key)
            return None if value is None else [str(v) for v in value]

        return cls(
            str(data["id"]),
            str(data["public_key"]),
            [str(a) for a in data["admins"]],
            data.get("key_statement"),
            data.get("key_statement_device"),
            bool(data.get("forward_only", False)),
            names("members"),
            names("preapproved"),
            names("banned"),
            data.get("created_by"),
            data.get("manager"),
        )
