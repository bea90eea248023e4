"""The key service's request and response bodies as typed models, and the JSON Schema drawn
from them for the OpenAPI document.

Each body is a ``TypedDict``: handlers are annotated to return their response model (mypy
checks the keys and value types), each handler parses its body field by field after its own
authorization checks (a wrong type is ``malformed_input``), and :func:`schema` turns a model
into JSON Schema. :func:`check` tells whether a value fits a model. Binary values are
base64url strings (``B64``); ids are ``Id``. A test runs whole flows and checks every
request and answer against its endpoint's models, so the document cannot drift from what
the service says.
"""

# No ``from __future__ import annotations`` here: Python 3.11's TypedDict sees
# ``NotRequired`` only in evaluated annotations.
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin

from sealroom.errors import SealroomError

__all__ = [
    "B64",
    "AddAdminRequest",
    "AddMemberRequest",
    "AddMembersRequest",
    "Added",
    "AuditEntries",
    "AuditEntry",
    "AuditReport",
    "Banned",
    "Base64",
    "Blob",
    "CreateDocumentRequest",
    "CreateGroupRequest",
    "CreateUserRequest",
    "CreatedGroup",
    "CreatedUser",
    "Deleted",
    "DeviceId",
    "DeviceInfo",
    "DeviceList",
    "DeviceRegistrationRequest",
    "DeviceSummary",
    "DocumentKey",
    "Edek",
    "EscrowHalf",
    "GrantItem",
    "GrantList",
    "GrantRecord",
    "GrantRequest",
    "Granted",
    "GroupId",
    "GroupInfo",
    "GroupList",
    "Id",
    "KeyStatementRequest",
    "Lifted",
    "ManagerClaim",
    "MemberItem",
    "MemberResults",
    "ModelError",
    "PreapproveRequest",
    "Preapproved",
    "Problem",
    "RegisterValueRequest",
    "Registered",
    "Removed",
    "RevokeDeviceRequest",
    "Revoked",
    "Rotated",
    "ServiceInfo",
    "Sig",
    "TargetModel",
    "TransformBatchRequest",
    "TransformRequest",
    "TransformResult",
    "TransformResults",
    "UserKey",
    "UserKeys",
    "UserKeysRequest",
    "UserRecord",
    "check",
    "schema",
]


@dataclass(frozen=True)
class Base64:
    """A binary value as a base64url string (no padding) of at most ``max_bytes`` bytes."""

    max_bytes: int = 65536


@dataclass(frozen=True)
class _Pattern:
    regex: str


B64 = Annotated[str, Base64()]
Id = Annotated[str, _Pattern(r"^[A-Za-z0-9._:@-]{1,128}$")]
Sig = Annotated[str, Base64(64)]
Blob = Annotated[str, Base64(8192)]


class ModelError(SealroomError, ValueError):
    """A value does not fit its model; the message names the field."""


# --- shared ---------------------------------------------------------------------------------


class Problem(TypedDict):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    code: str
    detail: str


class TargetModel(TypedDict):
    """Whom an EDEK is encrypted to."""

    kind: Literal["group", "user"]
    id: Id


# --- requests ---------------------------------------------------------------------------------


class CreateUserRequest(TypedDict):
    public_key: B64
    signing_key: B64
    escrow_blob: Annotated[str, Base64(1024)]


class UserKeysRequest(TypedDict):
    user_ids: list[Id]


class DeviceRegistrationRequest(TypedDict):
    device_id: Id
    name: str
    signing_key: B64
    public_key: B64
    certificate: Sig
    transform_key: B64


class RevokeDeviceRequest(TypedDict):
    proof: NotRequired[Sig]


class CreateGroupRequest(TypedDict):
    id: Id
    public_key: B64
    encrypted_group_key: Blob
    forward_only: NotRequired[bool]


class KeyStatementRequest(TypedDict):
    signature: Sig


class AddMemberRequest(TypedDict):
    transform_key: B64


class MemberItem(TypedDict):
    user: Id
    transform_key: B64


class AddMembersRequest(TypedDict):
    members: list[MemberItem]


class AddAdminRequest(TypedDict):
    encrypted_group_key: Blob


class PreapproveRequest(TypedDict):
    user_ids: list[Id]


class RegisterValueRequest(TypedDict):
    edek: Blob
    members_digest: Annotated[str, Base64(32)]


class TransformRequest(TypedDict):
    edek: Blob
    target: TargetModel


class TransformBatchRequest(TypedDict):
    items: list[TransformRequest]


class GrantItem(TypedDict):
    kind: Literal["group", "user"]
    id: Id
    edek: Blob


class CreateDocumentRequest(TypedDict):
    id: Id
    grants: list[GrantItem]


class GrantRequest(TypedDict):
    edek: Blob


# --- responses --------------------------------------------------------------------------------


class ServiceInfo(TypedDict):
    version: str
    signing_key: B64
    audience: str
    issuer: str


class EscrowHalf(TypedDict):
    half: B64


class CreatedUser(TypedDict):
    id: str
    public_key: B64
    service_part: B64


class UserRecord(TypedDict):
    id: str
    public_key: B64
    signing_key: B64
    escrow_blob: B64


class UserKey(TypedDict):
    public_key: B64
    signing_key: B64


class UserKeys(TypedDict):
    keys: dict[str, UserKey]


class DeviceId(TypedDict):
    device_id: str


class DeviceSummary(TypedDict):
    id: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None
    signing_key: B64
    public_key: B64
    certificate: B64


class DeviceList(TypedDict):
    devices: list[DeviceSummary]


class DeviceInfo(TypedDict):
    id: str
    user_id: str
    signing_key: B64
    public_key: B64
    certificate: B64
    revoked_at: int | None
    revoke_reason: str | None


class Revoked(TypedDict):
    revoked: str


class Rotated(TypedDict):
    device_id: str
    revoked: str | None


class CreatedGroup(TypedDict):
    id: str
    public_key: B64
    service_part: B64


class GroupId(TypedDict):
    id: str


class GroupList(TypedDict):
    groups: list[str]


class GroupInfo(TypedDict):
    """What anyone may know of a group; members and admins also see the rest."""

    id: str
    public_key: B64
    admins: list[str]
    key_statement: B64 | None
    key_statement_device: str | None
    forward_only: bool
    raw_public_key: NotRequired[B64]
    members: NotRequired[list[str]]
    preapproved: NotRequired[list[str]]
    created_by: NotRequired[str]
    manager: NotRequired[str | None]
    banned: NotRequired[list[str]]


class Deleted(TypedDict):
    deleted: str


class Added(TypedDict):
    added: str


class Removed(TypedDict):
    removed: str


class MemberResults(TypedDict):
    """Each user's outcome: null, or the problem that refused it."""

    results: dict[str, Problem | None]


class Preapproved(TypedDict):
    preapproved: list[str]


class Registered(TypedDict):
    registered: bool


class ManagerClaim(TypedDict):
    manager: str
    previous: str | None


class Banned(TypedDict):
    banned: str


class Lifted(TypedDict):
    lifted: str


class Edek(TypedDict):
    edek: B64


class TransformResult(TypedDict):
    """One item of a batch: its transformed EDEK, or the problem that refused it."""

    edek: NotRequired[B64]
    error: NotRequired[Problem]


class TransformResults(TypedDict):
    results: list[TransformResult]


class DocumentKey(TypedDict):
    owner: str
    via: str
    edek: B64


class Granted(TypedDict):
    granted: str


class GrantRecord(TypedDict):
    grantee_kind: Literal["group", "user"]
    grantee_id: str
    granted_by: str
    granted_at: int


class GrantList(TypedDict):
    grants: list[GrantRecord]


class AuditReport(TypedDict):
    ok: bool
    entries: int
    head_seq: int
    head_hash: B64
    head_signature: B64 | None
    head_token: str | None
    first_bad_seq: int | None
    reason: str | None


class AuditEntry(TypedDict):
    seq: int
    ts: int
    actor_user: str | None
    actor_device: str | None
    action: str
    object: str | None
    outcome: str
    prev_hash: B64
    entry_hash: B64
    signature: B64


class AuditEntries(TypedDict):
    entries: list[AuditEntry]


# --- JSON Schema and checking -----------------------------------------------------------------


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def _hints(tp: type) -> dict[str, Any]:
    """Field types, with ``NotRequired`` taken off (``__optional_keys__`` says which)."""
    out = {}
    for key, declared in typing.get_type_hints(tp, include_extras=True).items():
        hint = declared
        while get_origin(hint) in (NotRequired, typing.Required):
            (hint,) = get_args(hint)
        out[key] = hint
    return out


def _optional_keys(tp: type) -> frozenset[str]:
    keys: frozenset[str] = getattr(tp, "__optional_keys__", frozenset())
    return keys


def schema(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``tp``; each TypedDict goes into ``components`` once, by name,
    and is referred to with ``$ref``."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        out = schema(base, components)
        for m in meta:
            if isinstance(m, Base64):
                out |= {
                    "contentEncoding": "base64url",
                    "maxLength": -(-m.max_bytes * 4 // 3),
                    "description": f"base64url, at most {m.max_bytes} bytes",
                }
            elif isinstance(m, _Pattern):
                out["pattern"] = m.regex
        return out
    if _is_typeddict(tp):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # a placeholder first: models may refer to themselves
            hints = _hints(tp)
            optional = _optional_keys(tp)
            body: dict[str, Any] = {
                "type": "object",
                "properties": {k: schema(v, components) for k, v in hints.items()},
                "required": [k for k in hints if k not in optional],
            }
            if tp.__doc__ and not tp.__doc__.startswith(f"{name}("):
                body["description"] = " ".join(tp.__doc__.split())
            components[name] = body
        return {"$ref": f"#/components/schemas/{name}"}
    if origin in (Union, types.UnionType):
        return {"anyOf": [schema(a, components) for a in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is list:
        (item,) = get_args(tp)
        return {"type": "array", "items": schema(item, components)}
    if origin is dict:
        _, value = get_args(tp)
        return {"type": "object", "additionalProperties": schema(value, components)}
    if tp is Any:
        return {}
    simple = {str: "string", int: "integer", bool: "boolean", float: "number", type(None): "null"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def check(tp: Any, value: Any, where: str = "body") -> None:
    """Raise :class:`ModelError` unless ``value`` (parsed JSON) fits ``tp``. Properties a
    model does not name are let through (a newer client may send more)."""
    if tp is Any:
        return
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        for m in meta:
            if isinstance(m, Base64):
                if not isinstance(value, str):
                    raise ModelError(f"{where} must be a base64url string")
                if len(value) > -(-m.max_bytes * 4 // 3):
                    raise ModelError(f"{where}: longer than {m.max_bytes} bytes")
        check(base, value, where)
        return
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            raise ModelError(f"{where} must be an object")
        optional = _optional_keys(tp)
        for key, hint in _hints(tp).items():
            if key in value:
                check(hint, value[key], f"{key}" if where == "body" else f"{where}.{key}")
            elif key not in optional:
                raise ModelError(f"missing field {key!r}")
        return
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                check(option, value, where)
                return
            except ModelError:
                continue
        raise ModelError(f"{where} has the wrong type")
    if origin is Literal:
        if value not in get_args(tp):
            raise ModelError(f"{where} must be one of {', '.join(map(str, get_args(tp)))}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ModelError(f"{where} must be a list")
        (item,) = get_args(tp)
        for i, v in enumerate(value):
            check(item, v, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ModelError(f"{where} must be an object")
        _, inner = get_args(tp)
        for k, v in value.items():
            check(inner, v, f"{where}.{k}")
        return
    if tp is type(None):
        if value is not None:
            raise ModelError(f"{where} must be null")
        return
    if tp is bool:
        if not isinstance(value, bool):
            raise ModelError(f"{where} must be true or false")
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"{where} must be an integer")
        return
    if tp is str:
        if not isinstance(value, str):
            raise ModelError(f"{where} must be a string")
        return
    raise TypeError(f"cannot check {tp!r}")
