"""The key service's HTTP API (Starlette). Build it with :func:`create_app`.

Every handler authenticates (a JWT, a device signature, or either), parses its body with
size limits, runs the operation in a worker thread, and answers JSON. Every refusal is an
RFC 9457 problem document with a stable ``code`` (see :mod:`.errors`); bad input is a 4xx,
never a 500, and no response or log line carries a secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from sealroom import __version__
from sealroom._process import die_with_parent
from sealroom.api.encoding import b64d, b64e
from sealroom.api.origins import OriginPolicy
from sealroom.api.reqsig import parse_headers
from sealroom.crypto.pre import PublicKey, TransformKey
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.keyservice import audit, models
from sealroom.keyservice.context import Caller, Context
from sealroom.keyservice.cors import CorsMiddleware
from sealroom.keyservice.errors import CODES, ServiceError
from sealroom.keyservice.groups import Groups
from sealroom.keyservice.jwt_auth import JwksSource, JwtVerifier
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.keyservice.settings import Settings
from sealroom.keyservice.storage import (
    ConflictError,
    Database,
    StorageError,
    StorageUnavailableError,
    latest_version,
    open_database,
)
from sealroom.keyservice.transforms import Target, Transforms
from sealroom.keyservice.users import DeviceRegistration, Users
from sealroom.ops import metrics
from sealroom.ops.http import LOG_NOTE, RequestMiddleware, client_address
from sealroom.ops.limits import ClientLimiter, OverloadedError, WorkQueue, retry_after
from sealroom.ops.logs import OncePerOutage

__all__ = [
    "ANONYMOUS",
    "PROBLEM",
    "Endpoint",
    "Handler",
    "KeyServiceApp",
    "build",
    "create_app",
    "create_app_from_env",
    "openapi",
    "verify_audit",
]

log = logging.getLogger("sealroom.keyservice")
PROBLEM: Final[str] = "application/problem+json"


@dataclass
class KeyServiceApp:
    """The parts behind the HTTP layer, exposed for tests and the CLI."""

    settings: Settings
    db: Database
    keys: ServiceKeys
    ctx: Context
    users: Users
    groups: Groups
    transforms: Transforms
    #: Transforms admitted and not finished, per process; full: ``503 overloaded``.
    work: WorkQueue | None = None
    #: Requests per authenticated user, per process; over it: ``429 rate_limited``.
    users_limiter: ClientLimiter | None = None
    #: The database's outages, logged once each.
    db_outage: OncePerOutage | None = None


Handler = Callable[[Request, Caller, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    auth: str  # "none" | "jwt" | "device" | "either"
    summary: str
    handler: Handler
    #: The body's model (a TypedDict of :mod:`.models`): the OpenAPI document's, and what
    #: the handler parses (it checks each field itself, after its own authorization).
    request: Any = None

    @property
    def response(self) -> Any:
        """The answer's model: the handler's return annotation (mypy holds it to it)."""
        return typing.get_type_hints(self.handler, include_extras=True)["return"]


def _problem(exc: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    out = dict(headers or {})
    if exc.retry_after is not None:
        out["retry-after"] = retry_after(exc.retry_after)
    return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=out)


def _field(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ServiceError("malformed_input", f"missing field {name!r}")
    return body[name]


def _bytes(body: dict[str, Any], name: str, max_bytes: int = 65536) -> bytes:
    return b64d(_field(body, name), name, max_bytes=max_bytes)


def _str(body: dict[str, Any], name: str) -> str:
    value = _field(body, name)
    if not isinstance(value, str):
        raise ServiceError("malformed_input", f"{name} must be a string")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    """An optional boolean field (absent: false)."""
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ServiceError("malformed_input", f"{name} must be true or false")
    return value


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = _field(body, name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ServiceError("malformed_input", f"{name} must be a list of strings")
    return value


def _target(value: Any) -> Target:
    if not isinstance(value, dict):
        raise ServiceError("malformed_input", "target must be an object")
    return Target(_str(value, "kind"), _str(value, "id"))


def _registration(body: dict[str, Any]) -> DeviceRegistration:
    return DeviceRegistration(
        device_id=_str(body, "device_id"),
        name=_str(body, "name"),
        signing_key=VerifyingKey.from_bytes(_bytes(body, "signing_key")),
        public_key=PublicKey.from_bytes(_bytes(body, "public_key")),
        certificate=_bytes(body, "certificate", 64),
        transform_key=TransformKey.from_bytes(_bytes(body, "transform_key")),
    )


def _device_json(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = b64e(v) if isinstance(v, bytes) else v
    return out


def build(app_parts: KeyServiceApp) -> list[Endpoint]:
    """The API, one entry per endpoint; the OpenAPI document is drawn from this list."""
    p = app_parts
    users, groups, tf = p.users, p.groups, p.transforms

    async def service_info(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.ServiceInfo:
        return {
            "version": __version__,
            "signing_key": b64e(p.ctx.verifying_key.to_bytes()),
            "audience": p.settings.jwt_audience,
            "issuer": p.settings.jwt_issuer,
        }

    async def escrow_half(req: Request, caller: Caller, body: dict[str, Any]) -> models.EscrowHalf:
        return {"half": b64e(await run_in_threadpool(users.escrow_half, caller))}

    async def create_user(req: Request, caller: Caller, body: dict[str, Any]) -> models.CreatedUser:
        public, part = await run_in_threadpool(
            users.create_user,
            caller,
            PublicKey.from_bytes(_bytes(body, "public_key")),
            VerifyingKey.from_bytes(_bytes(body, "signing_key")),
            _bytes(body, "escrow_blob", 1024),
        )
        return {
            "id": caller.user_id,
            "public_key": b64e(public.to_bytes()),
            "service_part": b64e(part.to_bytes()),
        }

    async def me(req: Request, caller: Caller, body: dict[str, Any]) -> models.UserRecord:
        return cast(models.UserRecord, _device_json(await run_in_threadpool(users.me, caller)))

    async def public_keys(req: Request, caller: Caller, body: dict[str, Any]) -> models.UserKeys:
        found = await run_in_threadpool(users.public_keys, _str_list(body, "user_ids"))
        return {"keys": {u: cast(models.UserKey, _device_json(k)) for u, k in found.items()}}

    async def register_device(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.DeviceId:
        device_id = await run_in_threadpool(users.register_device, caller, _registration(body))
        return {"device_id": device_id}

    async def list_devices(req: Request, caller: Caller, body: dict[str, Any]) -> models.DeviceList:
        rows = await run_in_threadpool(users.list_devices, caller)
        return {"devices": [cast(models.DeviceSummary, _device_json(r)) for r in rows]}

    async def device_info(req: Request, caller: Caller, body: dict[str, Any]) -> models.DeviceInfo:
        info = await run_in_threadpool(users.device_info, req.path_params["id"])
        return cast(models.DeviceInfo, _device_json(info))

    async def device_by_key(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.DeviceInfo:
        key = b64d(req.path_params["key"], "signing key", max_bytes=32)
        info = await run_in_threadpool(users.device_by_signing_key, key)
        return cast(models.DeviceInfo, _device_json(info))

    async def revoke_device(req: Request, caller: Caller, body: dict[str, Any]) -> models.Revoked:
        proof = _bytes(body, "proof", 64) if "proof" in body else None
        await run_in_threadpool(users.revoke_device, caller, req.path_params["id"], proof)
        return {"revoked": req.path_params["id"]}

    async def rotate_device(req: Request, caller: Caller, body: dict[str, Any]) -> models.Rotated:
        if caller.device_id != req.path_params["id"]:
            raise ServiceError("forbidden", "a device rotates only itself")
        new_id = await run_in_threadpool(users.rotate_device, caller, _registration(body))
        return {"device_id": new_id, "revoked": caller.device_id}

    async def create_group(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.CreatedGroup:
        public, part = await run_in_threadpool(
            groups.create,
            caller,
            _str(body, "id"),
            PublicKey.from_bytes(_bytes(body, "public_key")),
            _bytes(body, "encrypted_group_key", 8192),
            forward_only=_bool(body, "forward_only"),
        )
        return {
            "id": body["id"],
            "public_key": b64e(public.to_bytes()),
            "service_part": b64e(part.to_bytes()),
        }

    async def group_statement(req: Request, caller: Caller, body: dict[str, Any]) -> models.GroupId:
        await run_in_threadpool(
            groups.set_key_statement, caller, req.path_params["id"], _bytes(body, "signature", 64)
        )
        return {"id": req.path_params["id"]}

    async def list_groups(req: Request, caller: Caller, body: dict[str, Any]) -> models.GroupList:
        return {"groups": await run_in_threadpool(groups.list_for, caller)}

    async def get_group(req: Request, caller: Caller, body: dict[str, Any]) -> models.GroupInfo:
        info = await run_in_threadpool(groups.get, caller, req.path_params["id"])
        return cast(models.GroupInfo, _device_json(info))

    async def delete_group(req: Request, caller: Caller, body: dict[str, Any]) -> models.Deleted:
        await run_in_threadpool(groups.delete, caller, req.path_params["id"])
        return {"deleted": req.path_params["id"]}

    async def add_member(req: Request, caller: Caller, body: dict[str, Any]) -> models.Added:
        tk = TransformKey.from_bytes(_bytes(body, "transform_key"))
        await run_in_threadpool(
            groups.add_member, caller, req.path_params["id"], req.path_params["user"], tk
        )
        return {"added": req.path_params["user"]}

    async def add_members(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.MemberResults:
        items = _field(body, "members")
        if not isinstance(items, list):
            raise ServiceError("malformed_input", "members must be a list")
        parsed = [
            (_str(i, "user"), TransformKey.from_bytes(_bytes(i, "transform_key")))
            if isinstance(i, dict)
            else _bad_item()
            for i in items
        ]
        results = await run_in_threadpool(groups.add_members, caller, req.path_params["id"], parsed)
        return {
            "results": {
                u: None if problem is None else problem.problem() for u, problem in results.items()
            }
        }

    async def remove_member(req: Request, caller: Caller, body: dict[str, Any]) -> models.Removed:
        await run_in_threadpool(
            groups.remove_member, caller, req.path_params["id"], req.path_params["user"]
        )
        return {"removed": req.path_params["user"]}

    async def add_admin(req: Request, caller: Caller, body: dict[str, Any]) -> models.Added:
        await run_in_threadpool(
            groups.add_admin,
            caller,
            req.path_params["id"],
            req.path_params["user"],
            _bytes(body, "encrypted_group_key", 8192),
        )
        return {"added": req.path_params["user"]}

    async def remove_admin(req: Request, caller: Caller, body: dict[str, Any]) -> models.Removed:
        await run_in_threadpool(
            groups.remove_admin, caller, req.path_params["id"], req.path_params["user"]
        )
        return {"removed": req.path_params["user"]}

    async def preapprove(req: Request, caller: Caller, body: dict[str, Any]) -> models.Preapproved:
        ids = _str_list(body, "user_ids")
        await run_in_threadpool(groups.preapprove, caller, req.path_params["id"], ids)
        return {"preapproved": ids}

    async def register_value(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.Registered:
        await run_in_threadpool(
            groups.register_value,
            caller,
            req.path_params["id"],
            _bytes(body, "edek", 8192),
            _bytes(body, "members_digest", 32),
        )
        return {"registered": True}

    async def claim_manager(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.ManagerClaim:
        previous = await run_in_threadpool(groups.claim_manager, caller, req.path_params["id"])
        return {"manager": caller.user_id, "previous": previous}

    async def ban(req: Request, caller: Caller, body: dict[str, Any]) -> models.Banned:
        await run_in_threadpool(groups.ban, caller, req.path_params["id"], req.path_params["user"])
        return {"banned": req.path_params["user"]}

    async def lift_ban(req: Request, caller: Caller, body: dict[str, Any]) -> models.Lifted:
        await run_in_threadpool(
            groups.lift_ban, caller, req.path_params["id"], req.path_params["user"]
        )
        return {"lifted": req.path_params["user"]}

    async def admin_key(req: Request, caller: Caller, body: dict[str, Any]) -> models.Edek:
        async with _computing(p):
            edek = await run_in_threadpool(groups.admin_key, caller, req.path_params["id"])
        return {"edek": b64e(edek)}

    async def transform(req: Request, caller: Caller, body: dict[str, Any]) -> models.Edek:
        edek, target = _bytes(body, "edek", 8192), _target(_field(body, "target"))
        async with _computing(p):
            try:
                out = await run_in_threadpool(tf.transform, caller, edek, target)
            except ServiceError:
                metrics.TRANSFORMS.labels("refused").inc()
                raise
        metrics.TRANSFORMS.labels("ok").inc()
        return {"edek": b64e(out)}

    async def transform_batch(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.TransformResults:
        items = _field(body, "items")
        if not isinstance(items, list):
            raise ServiceError("malformed_input", "items must be a list")
        parsed = [
            (_bytes(i, "edek", 8192), _target(_field(i, "target")))
            if isinstance(i, dict)
            else _bad_item()
            for i in items
        ]
        async with _computing(p):
            results = await run_in_threadpool(tf.transform_batch, caller, parsed)
        done = sum(isinstance(r, bytes) for r in results)
        metrics.TRANSFORMS.labels("ok").inc(done)
        metrics.TRANSFORMS.labels("refused").inc(len(results) - done)
        return {
            "results": [
                {"edek": b64e(r)} if isinstance(r, bytes) else {"error": r.problem()}
                for r in results
            ]
        }

    async def create_document(req: Request, caller: Caller, body: dict[str, Any]) -> models.GroupId:
        grants = _field(body, "grants")
        if not isinstance(grants, list):
            raise ServiceError("malformed_input", "grants must be a list")
        parsed = [
            (_target(g), _bytes(g, "edek", 8192)) if isinstance(g, dict) else _bad_item()
            for g in grants
        ]
        await run_in_threadpool(tf.create_document, caller, _str(body, "id"), parsed)
        return {"id": body["id"]}

    async def document_key(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.DocumentKey:
        async with _computing(p):
            out = await run_in_threadpool(tf.document_key, caller, req.path_params["id"])
        return {"owner": out["owner"], "via": out["via"], "edek": b64e(out["edek"])}

    async def grant(req: Request, caller: Caller, body: dict[str, Any]) -> models.Granted:
        target = Target(req.path_params["kind"], req.path_params["grantee"])
        await run_in_threadpool(
            tf.grant, caller, req.path_params["id"], target, _bytes(body, "edek", 8192)
        )
        return {"granted": target.label()}

    async def revoke_grant(req: Request, caller: Caller, body: dict[str, Any]) -> models.Revoked:
        target = Target(req.path_params["kind"], req.path_params["grantee"])
        await run_in_threadpool(tf.revoke_grant, caller, req.path_params["id"], target)
        return {"revoked": target.label()}

    async def list_grants(req: Request, caller: Caller, body: dict[str, Any]) -> models.GrantList:
        grants = await run_in_threadpool(tf.list_grants, caller, req.path_params["id"])
        return {"grants": cast(list[models.GrantRecord], grants)}

    async def delete_document(req: Request, caller: Caller, body: dict[str, Any]) -> models.Deleted:
        await run_in_threadpool(tf.delete_document, caller, req.path_params["id"])
        return {"deleted": req.path_params["id"]}

    async def audit_verify(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.AuditReport:
        kept = req.query_params.get("expect_head")
        expect = audit.SignedHead.from_text(kept) if kept is not None else None
        if expect is not None:
            try:
                expect.verify(p.ctx.verifying_key)
            except SignatureError:
                raise ServiceError(
                    "malformed_input", "the kept head is not signed by this service"
                ) from None
        report = await run_in_threadpool(verify_audit, p, expect)
        # The service vouches for a head only when the chain leads to it (and, if asked,
        # extends the kept head).
        head = (
            audit.SignedHead.sign(p.keys.signing_key, report.head_seq, report.head_hash)
            if report.ok
            else None
        )
        return {
            "ok": report.ok,
            "entries": report.entries,
            "head_seq": report.head_seq,
            "head_hash": b64e(report.head_hash),
            "head_signature": b64e(head.signature) if head else None,
            "head_token": head.to_text() if head else None,
            "first_bad_seq": report.first_bad_seq,
            "reason": report.reason,
        }

    async def audit_entries(
        req: Request, caller: Caller, body: dict[str, Any]
    ) -> models.AuditEntries:
        if caller.user_id not in p.settings.auditors:
            raise ServiceError("forbidden", "only configured auditors read audit entries")
        try:
            after = int(req.query_params.get("after", "0"))
            limit = int(req.query_params.get("limit", "100"))
        except ValueError:
            raise ServiceError("malformed_input", "after and limit are integers") from None
        if not (0 <= after < 1 << 62 and 1 <= limit <= 1000):
            raise ServiceError("malformed_input", "0 <= after < 2^62 and 1 <= limit <= 1000")

        def read() -> list[dict[str, Any]]:
            with p.db.transaction() as tx:
                rows: list[dict[str, Any]] = tx.all(
                    "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
                )
            return rows

        rows = await run_in_threadpool(read)
        return {"entries": [cast(models.AuditEntry, _device_json(r)) for r in rows]}

    e = Endpoint
    return [
        e("GET", "/v1/service", "none", "Service facts: version, signing key to pin", service_info),
        e(
            "POST",
            "/v1/users/me/escrow-half",
            "jwt",
            "The service's half of the escrow secret",
            escrow_half,
        ),
        e(
            "POST",
            "/v1/users",
            "jwt",
            "Create the caller's user",
            create_user,
            models.CreateUserRequest,
        ),
        e("GET", "/v1/users/me", "either", "The caller's user, with its escrow blob", me),
        e(
            "POST",
            "/v1/users/keys",
            "either",
            "Public keys of many users",
            public_keys,
            models.UserKeysRequest,
        ),
        e(
            "POST",
            "/v1/devices",
            "either",
            "Register a device (JWT, or approved by a device)",
            register_device,
            models.DeviceRegistrationRequest,
        ),
        e("GET", "/v1/devices", "either", "The caller's devices", list_devices),
        e("GET", "/v1/devices/{id}", "either", "Public facts about a device", device_info),
        e(
            "GET",
            "/v1/devices/by-signing-key/{key}",
            "either",
            "The device that owns a signing key",
            device_by_key,
        ),
        e(
            "POST",
            "/v1/devices/{id}/revoke",
            "either",
            "Revoke a device",
            revoke_device,
            models.RevokeDeviceRequest,
        ),
        e(
            "POST",
            "/v1/devices/{id}/rotate",
            "device",
            "Replace this device's keys atomically",
            rotate_device,
            models.DeviceRegistrationRequest,
        ),
        e(
            "POST",
            "/v1/groups",
            "device",
            "Create a group",
            create_group,
            models.CreateGroupRequest,
        ),
        e("GET", "/v1/groups", "device", "Groups the caller is in", list_groups),
        e(
            "PUT",
            "/v1/groups/{id}/key-statement",
            "device",
            "An admin device signs the group's public key",
            group_statement,
            models.KeyStatementRequest,
        ),
        e("GET", "/v1/groups/{id}", "device", "A group's keys, admins and members", get_group),
        e("DELETE", "/v1/groups/{id}", "device", "Delete a group", delete_group),
        e(
            "PUT",
            "/v1/groups/{id}/members/{user}",
            "device",
            "Add a member",
            add_member,
            models.AddMemberRequest,
        ),
        e(
            "POST",
            "/v1/groups/{id}/members",
            "device",
            "Add many members (up to 256), each with its transform key; each answered alone",
            add_members,
            models.AddMembersRequest,
        ),
        e(
            "DELETE",
            "/v1/groups/{id}/members/{user}",
            "device",
            "Remove a member or leave",
            remove_member,
        ),
        e(
            "PUT",
            "/v1/groups/{id}/admins/{user}",
            "device",
            "Add an admin",
            add_admin,
            models.AddAdminRequest,
        ),
        e("DELETE", "/v1/groups/{id}/admins/{user}", "device", "Remove an admin", remove_admin),
        e(
            "POST",
            "/v1/groups/{id}/preapproved",
            "device",
            "Pre-approve users",
            preapprove,
            models.PreapproveRequest,
        ),
        e(
            "POST",
            "/v1/groups/{id}/values",
            "device",
            "The manager registers a value encrypted to the group, naming its members"
            " (forward-only groups)",
            register_value,
            models.RegisterValueRequest,
        ),
        e(
            "PUT",
            "/v1/groups/{id}/manager",
            "device",
            "An admin claims the management of a forward-only group",
            claim_manager,
        ),
        e(
            "PUT",
            "/v1/groups/{id}/bans/{user}",
            "device",
            "The manager removes a user from a forward-only group and bans it",
            ban,
        ),
        e(
            "DELETE",
            "/v1/groups/{id}/bans/{user}",
            "device",
            "The manager lifts a ban",
            lift_ban,
        ),
        e(
            "GET",
            "/v1/groups/{id}/admin-key",
            "device",
            "The group key for an admin's device",
            admin_key,
        ),
        e(
            "POST",
            "/v1/transform",
            "device",
            "Transform an EDEK to the calling device",
            transform,
            models.TransformRequest,
        ),
        e(
            "POST",
            "/v1/transform/batch",
            "device",
            "Transform many EDEKs",
            transform_batch,
            models.TransformBatchRequest,
        ),
        e(
            "POST",
            "/v1/documents",
            "device",
            "Create a managed document",
            create_document,
            models.CreateDocumentRequest,
        ),
        e(
            "GET",
            "/v1/documents/{id}/key",
            "device",
            "The document key for this device",
            document_key,
        ),
        e("GET", "/v1/documents/{id}/grants", "device", "A document's grants", list_grants),
        e(
            "PUT",
            "/v1/documents/{id}/grants/{kind}/{grantee}",
            "device",
            "Grant access",
            grant,
            models.GrantRequest,
        ),
        e(
            "DELETE",
            "/v1/documents/{id}/grants/{kind}/{grantee}",
            "device",
            "Revoke a grant",
            revoke_grant,
        ),
        e("DELETE", "/v1/documents/{id}", "device", "Delete a document", delete_document),
        e("GET", "/v1/audit/verify", "device", "Verify the audit chain", audit_verify),
        e("GET", "/v1/audit", "device", "Audit entries (auditors only)", audit_entries),
    ]


def _bad_item() -> Any:
    raise ServiceError("malformed_input", "each item must be an object")


def _batch_weight(raw: bytes) -> int:
    """How many transforms a batch asks for (1 if the body does not say: it will be
    refused as malformed anyway)."""
    try:
        items = json.loads(raw).get("items")
    except (ValueError, RecursionError, AttributeError):
        return 1
    return len(items) if isinstance(items, list) else 1


#: The endpoints that compute pairings, and how many transforms a request asks for: they
#: take a place in the transform queue before anything else happens (503 when it is full).
_GATED: Final[dict[tuple[str, str], Callable[[bytes], int]]] = {
    ("POST", "/v1/transform"): lambda raw: 1,
    ("POST", "/v1/transform/batch"): _batch_weight,
    ("GET", "/v1/documents/{id}/key"): lambda raw: 1,
    ("GET", "/v1/groups/{id}/admin-key"): lambda raw: 1,
}


def _computing(parts: KeyServiceApp) -> Any:
    """``async with``: one of the places to compute (the request already holds its place in
    the queue, taken in :func:`_wrap`)."""
    return parts.work.running() if parts.work is not None else contextlib.nullcontext()


def verify_audit(parts: KeyServiceApp, expect: audit.SignedHead | None = None) -> audit.AuditReport:
    """Verify up to the head as read first, so appends racing the read do not matter; with
    ``expect``, also that the chain still holds that kept head."""
    with parts.db.read_transaction() as tx:
        head = tx.one("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        if head is None:  # pragma: no cover - created by the first migration
            raise StorageError("audit head missing")
        rows = tx.all("SELECT * FROM audit WHERE seq <= ? ORDER BY seq", (head["seq"],))
    return audit.verify_chain(rows, head, parts.ctx.verifying_key, expect)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ServiceError("body_too_large", f"at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError("body_too_large", f"at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


ANONYMOUS: Final[Caller] = Caller("")


async def _authenticate(parts: KeyServiceApp, ep: Endpoint, request: Request, raw: bytes) -> Caller:
    if ep.auth == "none":
        return ANONYMOUS
    signed = parse_headers(request.headers)
    if signed is not None and ep.auth in ("device", "either"):
        return await run_in_threadpool(
            parts.users.authenticate_device,
            signed,
            request.method,
            request.url.path,
            request.url.query,
            raw,
        )
    auth = request.headers.get("authorization", "")
    if ep.auth in ("jwt", "either") and auth.lower().startswith("bearer "):
        return await run_in_threadpool(parts.users.authenticate_jwt, auth[7:].strip())
    raise ServiceError(
        "unauthenticated",
        "sign the request with a device key"
        if ep.auth == "device"
        else "send a bearer token or a device signature",
    )


def _wrap(parts: KeyServiceApp, ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def refuse(request: Request, caller: Caller | None, exc: ServiceError) -> Response:
        request.scope.setdefault(LOG_NOTE, {})["code"] = exc.code
        if not exc.audited and exc.status < 500:  # refused before an operation: audit it
            actor = None if caller is None or caller is ANONYMOUS else caller
            await run_in_threadpool(
                parts.ctx.refused, actor, f"{ep.method} {ep.path}", None, exc.code
            )
            exc.audited = True
        return _problem(exc)

    def over_rate(request: Request, caller: Caller) -> ServiceError | None:
        limiter = parts.users_limiter
        if limiter is None:
            return None
        key = f"user:{caller.user_id}" if caller is not ANONYMOUS else client_address(request.scope)
        wait = limiter.take(key, time.monotonic())
        if not wait:
            return None
        metrics.RATE_LIMITED.labels("keyservice", "user").inc()
        return ServiceError(
            "rate_limited", f"at most {limiter.rate:g} requests a second", retry_after=wait
        )

    weigh = _GATED.get((ep.method, ep.path))

    async def endpoint(request: Request) -> Response:
        try:
            raw = await _read_body(request, parts.settings.max_body_bytes)
        except ServiceError as exc:
            return await refuse(request, None, exc)
        if weigh is None or parts.work is None:
            return await handle(request, raw)
        try:
            taken = parts.work.reserve(weigh(raw))
        except OverloadedError as exc:  # before authentication: a refusal costs nothing
            metrics.TRANSFORMS.labels("shed").inc(weigh(raw))
            shed = ServiceError(
                "overloaded",
                f"{parts.work.pending} transforms queued here",
                retry_after=exc.retry_after,
            )
            request.scope.setdefault(LOG_NOTE, {})["code"] = shed.code
            return _problem(shed)
        try:
            return await handle(request, raw)
        finally:
            parts.work.release(taken)

    async def handle(request: Request, raw: bytes) -> Response:
        caller: Caller | None = None
        try:
            caller = await _authenticate(parts, ep, request, raw)
            limited = over_rate(request, caller)
            if limited is not None:
                request.scope.setdefault(LOG_NOTE, {})["code"] = limited.code
                return _problem(limited)
            body: dict[str, Any] = {}
            if raw:
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):  # bad JSON, huge numbers, deep nesting
                    raise ServiceError("malformed_input", "body is not JSON") from None
                if not isinstance(body, dict):
                    raise ServiceError("malformed_input", "body must be a JSON object")
            result = await ep.handler(request, caller, body)
            if caller.nonce is not None and not caller.nonce.stored:
                await run_in_threadpool(parts.ctx.store_nonce, caller)  # it recorded nothing
            if parts.db_outage is not None and parts.db_outage.failing:
                parts.db_outage.ok()
            return JSONResponse(result)
        except StorageUnavailableError as exc:
            if parts.db_outage is not None:
                parts.db_outage.failed(exc)
            return await refuse(
                request, caller, ServiceError("unavailable", "database", retry_after=5)
            )
        except ServiceError as exc:
            return await refuse(request, caller, exc)
        except MalformedInputError as exc:
            return await refuse(request, caller, ServiceError("malformed_input", str(exc)))
        except ConflictError:
            return await refuse(
                request, caller, ServiceError("conflict", "a concurrent change won; retry")
            )
        except StorageError:
            log.exception("storage failure on %s %s", ep.method, ep.path)
            request.scope.setdefault(LOG_NOTE, {})["code"] = "internal"
            return _problem(ServiceError("internal", "storage failure"))

    return endpoint


def openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document: every route, its security, its body and its answer drawn
    from the typed models, and the problem codes each answer may carry."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    problem_ref = models.schema(models.Problem, schemas)
    security: dict[str, list[dict[str, list[str]]]] = {
        "jwt": [{"bearer": []}],
        "device": [{"device": []}],
        "either": [{"bearer": []}, {"device": []}],
        "none": [],
    }
    for ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.handler.__name__,
            "security": security[ep.auth],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": models.schema(ep.response, schemas)}
                    },
                },
                "429": {
                    "description": "Rate limited (code rate_limited); see Retry-After",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {PROBLEM: {"schema": problem_ref}},
                },
                "default": {
                    "description": "Problem: one of the codes of the ProblemCode schema",
                    "content": {PROBLEM: {"schema": problem_ref}},
                },
            },
        }
        params = [s.strip("{}") for s in ep.path.split("/") if s.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in params
            ]
        if ep.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": models.schema(ep.request, schemas)}},
            }
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    schemas["ProblemCode"] = {"enum": sorted(CODES), "description": "Problem.code values"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sealroom key service", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "device": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Sealroom-Signature",
                    "description": "Ed25519 request signature; see docs/keyservice.md",
                },
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def create_app(
    settings: Settings, *, clock: Callable[[], float] | None = None, jwks: JwksSource | None = None
) -> Starlette:
    """Build the ASGI app. ``app.state.parts`` holds the :class:`KeyServiceApp`."""
    if jwks is None:
        settings.validate()
    db = open_database(settings.database_url)
    keys = ServiceKeys.load_or_create(settings.secrets_file)
    ctx = Context(db, keys) if clock is None else Context(db, keys, clock)
    if jwks is None:
        jwks = (
            JwksSource(url=settings.jwks_url)
            if settings.jwks_url
            else JwksSource(path=settings.jwks_file)
        )
    verifier = JwtVerifier(jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    parts = KeyServiceApp(
        settings,
        db,
        keys,
        ctx,
        Users(ctx, verifier),
        Groups(ctx),
        Transforms(ctx),
        work=WorkQueue(settings.transform_concurrency, settings.transform_queue),
        users_limiter=ClientLimiter(settings.rate_limit, settings.rate_burst),
        db_outage=OncePerOutage(log, "the database"),
    )
    endpoints = build(parts)
    spec = openapi(endpoints)
    # One route per path, whatever its methods, so that a 405 names them all in Allow.
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    routes: list[BaseRoute] = [
        Route(path, _dispatch({m: _wrap(parts, ep) for m, ep in eps.items()}), methods=list(eps))
        for path, eps in by_path.items()
    ]

    async def openapi_route(request: Request) -> Response:
        return JSONResponse(spec)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def ready(request: Request) -> Response:
        checks = {
            "database": await run_in_threadpool(_database_ready, parts),
            "idp_keys": await run_in_threadpool(jwks.ready),
        }
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    routes += [
        Route("/openapi.json", openapi_route),
        Route("/healthz", health),
        Route("/readyz", ready),
        Route("/metrics", metrics_route),
    ]
    if settings.web_root is not None:  # the web client, from this origin (no CORS needed)
        routes.append(Mount("/web", StaticFiles(directory=settings.web_root, html=True)))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        if status == 404:
            twin = _slash_twin(routes, request)
            if twin is not None:  # the route exists without (or with) the trailing slash
                request.scope.setdefault(LOG_NOTE, {})["code"] = "moved"
                return _problem(ServiceError("moved", f"use {twin}"), {"location": twin})
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "malformed_input")
        request.scope.setdefault(LOG_NOTE, {})["code"] = code
        detail = {404: "no such route", 405: f"allowed: {headers.get('Allow', '')}"}
        return _problem(ServiceError(code, detail.get(status, "")), headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return _problem(ServiceError("internal"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        db.close()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # http_error answers a problem document instead
    app.add_middleware(CorsMiddleware, policy=OriginPolicy(settings.cors_origins))
    app.add_middleware(
        RequestMiddleware,
        service="keyservice",
        limiter=ClientLimiter(settings.address_rate_limit, settings.address_rate_burst),
    )
    app.state.parts = parts
    return app


def _dispatch(
    by_method: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    if "GET" in by_method:
        by_method = {**by_method, "HEAD": by_method["GET"]}

    async def endpoint(request: Request) -> Response:
        return await by_method[request.method](request)

    return endpoint


def _slash_twin(routes: list[BaseRoute], request: Request) -> str | None:
    """The path with the trailing slash added or taken away, if a route has it."""
    path = request.url.path
    twin = path.rstrip("/") if path.endswith("/") else path + "/"
    if not twin or twin == path:
        return None
    scope = {**request.scope, "path": twin}
    if any(route.matches(scope)[0] != Match.NONE for route in routes):
        query = request.url.query
        return twin + ("?" + query if query else "")
    return None


def _database_ready(parts: KeyServiceApp) -> str:
    """``"ok"`` if the database answers and holds this code's schema (or a newer one, during
    a rolling upgrade), else why not."""
    try:
        version = parts.db.schema_version(timeout=2.0)
    except StorageError as exc:
        if parts.db_outage is not None:
            parts.db_outage.failed(exc)
        return f"unreachable ({exc})"
    if parts.db_outage is not None:
        parts.db_outage.ok()
    if version < latest_version():  # a newer release's schema is fine: migrations only add
        return f"schema at version {version}, this code needs {latest_version()}"
    return "ok"


def create_app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from ``SEALROOM_*`` variables. A worker
    process (one with a multiprocessing parent: uvicorn's supervisor) dies with its parent,
    so that a supervisor killed outright leaves no worker behind."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(parent.pid)
    return create_app(Settings.from_env())
