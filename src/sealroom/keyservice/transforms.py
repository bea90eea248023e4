"""Transforms (group→user→device or user→device) and managed documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sealroom.crypto.pre import EncryptedValue, VerifiedTransformKey, transform
from sealroom.keyservice.context import Caller, Context, check_id
from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.groups import check_forward_only, parse_edek
from sealroom.keyservice.storage import ConflictError, Tx
from sealroom.keyservice.users import device_transform_key

__all__ = [
    "KINDS",
    "MAX_BATCH",
    "MAX_GRANTS",
    "Target",
    "Transforms",
]

MAX_BATCH: Final[int] = 256
MAX_GRANTS: Final[int] = 1000
KINDS: Final[tuple[str, ...]] = ("group", "user")


@dataclass(frozen=True, slots=True)
class Target:
    """Whom an EDEK is encrypted to."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ServiceError("malformed_input", "target kind must be 'group' or 'user'")
        check_id(self.id, f"{self.kind} id")

    def label(self) -> str:
        return f"{self.kind}:{self.id}"


class Transforms:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _chain(
        self, tx: Tx, caller: Caller, target: Target, value: EncryptedValue
    ) -> list[VerifiedTransformKey]:
        device = device_transform_key(tx, caller)
        to_device = self.ctx.load_transform_key(bytes(device["transform_key"]))
        if target.kind == "user":
            if target.id != caller.user_id:
                raise ServiceError("forbidden", "a user EDEK goes only to that user's devices")
            return [to_device]
        row = tx.one(
            "SELECT transform_key, since FROM group_members WHERE group_id = ? AND user_id = ?",
            (target.id, caller.user_id),
        )
        if row is None:
            raise ServiceError("not_member")
        check_forward_only(tx, target.id, int(row["since"]), value)
        return [self.ctx.load_transform_key(bytes(row["transform_key"])), to_device]

    def _apply(self, keys: list[VerifiedTransformKey], value: EncryptedValue) -> bytes:
        return transform(value, keys, self.ctx.keys.signing_key).to_bytes()

    def transform(self, caller: Caller, raw: bytes, target: Target) -> bytes:
        caller.require_device()

        def read(tx: Tx) -> tuple[list[VerifiedTransformKey], EncryptedValue]:
            value = parse_edek(raw)  # parsed once, for the forward-only check and the transform
            return self._chain(tx, caller, target, value), value

        return self.ctx.run_computed(
            caller, "transform", target.label(), read, lambda data: self._apply(*data)
        )

    def transform_batch(
        self, caller: Caller, items: list[tuple[bytes, Target]]
    ) -> list[bytes | ServiceError]:
        """Each item is transformed and audited on its own; one refusal spoils no other."""
        if not 1 <= len(items) <= MAX_BATCH:
            raise ServiceError("malformed_input", f"1-{MAX_BATCH} items per batch")
        out: list[bytes | ServiceError] = []
        for raw, target in items:
            try:
                out.append(self.transform(caller, raw, target))
            except ServiceError as exc:
                out.append(exc)
        return out

    # --- managed documents ---

    def create_document(
        self, caller: Caller, doc_id: str, grants: list[tuple[Target, bytes]]
    ) -> None:
        check_id(doc_id, "document id")
        if not 1 <= len(grants) <= MAX_GRANTS:
            raise ServiceError("malformed_input", f"1-{MAX_GRANTS} grants")

        def fn(tx: Tx) -> None:
            device_transform_key(tx, caller)
            try:
                tx.execute(
                    "INSERT INTO documents (id, owner, created_at) VALUES (?, ?, ?)",
                    (doc_id, caller.user_id, self.ctx.now()),
                )
            except ConflictError:
                raise ServiceError("conflict", "document already exists") from None
            for target, edek in grants:
                self._insert_grant(tx, caller, doc_id, target, edek)

        self.ctx.run(caller, "create_document", f"document:{doc_id}", fn)

    def _insert_grant(
        self, tx: Tx, caller: Caller, doc_id: str, target: Target, edek: bytes
    ) -> None:
        table = "sr_groups" if target.kind == "group" else "users"
        if tx.one(f"SELECT 1 AS x FROM {table} WHERE id = ?", (target.id,)) is None:  # noqa: S608
            raise ServiceError("not_found", f"no such {target.kind}")
        value = parse_edek(edek)
        maker = tx.one(
            "SELECT user_id, revoke_reason FROM devices WHERE signing_key = ?",
            (value.origin_signer,),
        )
        if (
            maker is None
            or maker["user_id"] != caller.user_id
            or maker["revoke_reason"] == "revoked"
        ):
            # Clients name a document's owner after the device that made the key reaching
            # them; a grant key made by anyone else would let them attribute it wrongly.
            raise ServiceError("forbidden", "a grant's key must be made by a device of the owner")
        tx.execute(
            "DELETE FROM document_grants WHERE document_id = ? AND grantee_kind = ? "
            "AND grantee_id = ?",
            (doc_id, target.kind, target.id),
        )
        tx.execute(
            "INSERT INTO document_grants (document_id, grantee_kind, grantee_id, edek, "
            "granted_by, granted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (doc_id, target.kind, target.id, edek, caller.user_id, self.ctx.now()),
        )

    def _owned(self, tx: Tx, caller: Caller, doc_id: str) -> None:
        row = tx.one("SELECT owner FROM documents WHERE id = ?", (doc_id,))
        if row is None:
            raise ServiceError("not_found", "no such document")
        if row["owner"] != caller.user_id:
            raise ServiceError("forbidden", "only the owner changes grants")
        device_transform_key(tx, caller)

    def grant(self, caller: Caller, doc_id: str, target: Target, edek: bytes) -> None:
        check_id(doc_id, "document id")

        def fn(tx: Tx) -> None:
            self._owned(tx, caller, doc_id)
            self._insert_grant(tx, caller, doc_id, target, edek)

        self.ctx.run(caller, "grant", f"document:{doc_id}/{target.label()}", fn)

    def revoke_grant(self, caller: Caller, doc_id: str, target: Target) -> None:
        check_id(doc_id, "document id")

        def fn(tx: Tx) -> None:
            self._owned(tx, caller, doc_id)
            if not tx.execute(
                "DELETE FROM document_grants WHERE document_id = ? AND "
                "grantee_kind = ? AND grantee_id = ?",
                (doc_id, target.kind, target.id),
            ):
                raise ServiceError("not_found", "no such grant")

        self.ctx.run(caller, "revoke_grant", f"document:{doc_id}/{target.label()}", fn)

    def delete_document(self, caller: Caller, doc_id: str) -> None:
        check_id(doc_id, "document id")

        def fn(tx: Tx) -> None:
            self._owned(tx, caller, doc_id)
            tx.execute("DELETE FROM document_grants WHERE document_id = ?", (doc_id,))
            tx.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

        self.ctx.run(caller, "delete_document", f"document:{doc_id}", fn)

    def document_key(self, caller: Caller, doc_id: str) -> dict[str, Any]:
        """The caller's way in: its user grant, else a grant to a group it belongs to,
        transformed to the calling device."""
        check_id(doc_id, "document id")

        def read(tx: Tx) -> tuple[dict[str, Any], list[VerifiedTransformKey], EncryptedValue]:
            doc = tx.one("SELECT owner FROM documents WHERE id = ?", (doc_id,))
            if doc is None:
                raise ServiceError("not_found", "no such document")
            rows = tx.all(
                "SELECT grantee_kind, grantee_id, edek FROM document_grants WHERE "
                "document_id = ? AND grantee_kind = 'user' AND grantee_id = ?",
                (doc_id, caller.user_id),
            ) or tx.all(
                "SELECT g.grantee_kind, g.grantee_id, g.edek FROM document_grants g "
                "JOIN group_members m ON m.group_id = g.grantee_id "
                "WHERE g.document_id = ? AND g.grantee_kind = 'group' AND m.user_id = ? "
                "ORDER BY g.grantee_id",
                (doc_id, caller.user_id),
            )
            refusal = ServiceError("forbidden", "no grant reaches this user")
            for row in rows:  # the first grant that opens (a forward-only group may not)
                target = Target(row["grantee_kind"], row["grantee_id"])
                edek = parse_edek(bytes(row["edek"]))
                try:
                    keys = self._chain(tx, caller, target, edek)
                except ServiceError as exc:
                    if exc.code != "before_membership":
                        raise
                    refusal = exc
                    continue
                return {"owner": doc["owner"], "via": target.label()}, keys, edek
            raise refusal

        def compute(
            data: tuple[dict[str, Any], list[VerifiedTransformKey], EncryptedValue],
        ) -> dict[str, Any]:
            info, keys, edek = data
            return {**info, "edek": self._apply(keys, edek)}

        return self.ctx.run_computed(caller, "unwrap_document", f"document:{doc_id}", read, compute)

    def list_grants(self, caller: Caller, doc_id: str) -> list[dict[str, Any]]:
        check_id(doc_id, "document id")
        with self.ctx.db.transaction() as tx:
            self._owned(tx, caller, doc_id)
            rows = tx.all(
                "SELECT grantee_kind, grantee_id, granted_by, granted_at FROM "
                "document_grants WHERE document_id = ? ORDER BY grantee_kind, "
                "grantee_id",
                (doc_id,),
            )
        return [dict(r) for r in rows]
