"""Groups: admins hold the group private key (encrypted to them); members get a
group→user transform key that the service augments; users can be pre-approved.

A forward-only group (a meeting) also has one *manager*, an admin: only the manager changes
its members, admins and bans, and registers values, and every value it registers names the
exact member list it expects (:func:`~sealroom.api.identity.members_digest`), so nobody can
slip a member in behind the manager's back. Another admin becomes manager only by claiming
it, which the audit trail records and the previous manager notices on its next call. A
removed user stays banned, whoever manages the meeting later, until the manager lifts it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sealroom.api.identity import GROUP_KEY_LABEL, group_key_message, members_digest
from sealroom.crypto import labels
from sealroom.crypto.pre import (
    AugmentationSecret,
    EncryptedValue,
    PublicKey,
    TransformKey,
    augment_public_key,
    augment_transform_key,
    transform,
)
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.keyservice.context import Caller, Context, check_id
from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.storage import ConflictError, Row, Tx
from sealroom.keyservice.users import device_transform_key

__all__ = [
    "MAX_BATCH_MEMBERS",
    "MAX_EDEK_BYTES",
    "MAX_VALUES_PER_GROUP",
    "Groups",
    "check_forward_only",
    "parse_edek",
    "value_fingerprint",
]

_MEMBER_KEY = "SELECT transform_key FROM group_members WHERE group_id = ? AND user_id = ?"

MAX_EDEK_BYTES = 8192
#: Registered values kept per forward-only group (a long meeting rekeys a few hundred times).
MAX_VALUES_PER_GROUP = 100_000
#: Members added per request (a meeting manager adds joiners in batches).
MAX_BATCH_MEMBERS = 256


def _purpose(group_id: str) -> str:
    return f"group-augmentation/{group_id}"


class Groups:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _group(self, tx: Tx, group_id: str, *, lock: bool = False) -> Row:
        """The group row; with ``lock``, held until commit so concurrent admin changes on
        PostgreSQL serialize (SQLite writers already do)."""
        suffix = " FOR UPDATE" if lock and tx.dialect == "postgres" else ""
        row = tx.one("SELECT * FROM sr_groups WHERE id = ?" + suffix, (group_id,))  # noqa: S608
        if row is None:
            raise ServiceError("not_found", "no such group")
        return row

    @staticmethod
    def _is_admin(tx: Tx, group_id: str, user_id: str) -> bool:
        return (
            tx.one(
                "SELECT 1 AS x FROM group_admins WHERE group_id = ? AND user_id = ?",
                (group_id, user_id),
            )
            is not None
        )

    def _require_admin(self, tx: Tx, group_id: str, caller: Caller) -> Row:
        """The group, locked, if the caller may change it: an admin, and in a forward-only
        group the manager."""
        group = self._group(tx, group_id, lock=True)
        if not self._is_admin(tx, group_id, caller.user_id):
            raise ServiceError("not_admin")
        if group["forward_only"] and group["manager"] not in (None, caller.user_id):
            raise ServiceError("not_manager")
        device_transform_key(tx, caller)  # the admin's device must be live
        return group

    @staticmethod
    def _require_forward_only(group: Row) -> None:
        if not group["forward_only"]:
            raise ServiceError("malformed_input", "the group is not forward-only")

    def _caller_signer(self, tx: Tx, caller: Caller) -> VerifyingKey:
        row = tx.one("SELECT signing_key FROM devices WHERE id = ?", (caller.require_device(),))
        if row is None:
            raise ServiceError("unknown_device")
        return VerifyingKey.from_bytes(bytes(row["signing_key"]))

    def create(
        self,
        caller: Caller,
        group_id: str,
        raw_public_key: PublicKey,
        encrypted_group_key: bytes,
        *,
        forward_only: bool = False,
    ) -> tuple[PublicKey, PublicKey]:
        """Create a group with the caller's user as its first admin. In a ``forward_only``
        group (a meeting) members open only values registered after they were added."""
        check_id(group_id, "group id")
        parse_edek(encrypted_group_key)

        def fn(tx: Tx) -> tuple[PublicKey, PublicKey]:
            device_transform_key(tx, caller)
            secret = AugmentationSecret.generate()
            public = augment_public_key(raw_public_key, secret.public_part())
            try:
                tx.execute(
                    "INSERT INTO sr_groups (id, public_key, raw_public_key, augmentation_secret,"
                    " created_by, created_at, forward_only, manager)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        group_id,
                        public.to_bytes(),
                        raw_public_key.to_bytes(),
                        self.ctx.seal_augmentation_secret(_purpose(group_id), secret),
                        caller.user_id,
                        self.ctx.now(),
                        int(forward_only),
                        caller.user_id if forward_only else None,
                    ),
                )
            except ConflictError:
                raise ServiceError("conflict", "group already exists") from None
            tx.execute(
                "INSERT INTO group_admins (group_id, user_id, encrypted_group_key) "
                "VALUES (?, ?, ?)",
                (group_id, caller.user_id, encrypted_group_key),
            )
            return public, secret.public_part()

        return self.ctx.run(caller, "create_group", f"group:{group_id}", fn)

    def get(self, caller: Caller, group_id: str) -> dict[str, Any]:
        check_id(group_id, "group id")
        with self.ctx.db.transaction() as tx:
            group = self._group(tx, group_id)
            admins = [
                r["user_id"]
                for r in tx.all(
                    "SELECT user_id FROM group_admins WHERE group_id = ? ORDER BY user_id",
                    (group_id,),
                )
            ]
            members = [
                r["user_id"]
                for r in tx.all(
                    "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
                    (group_id,),
                )
            ]
            pre = [
                r["user_id"]
                for r in tx.all(
                    "SELECT user_id FROM group_preapproved WHERE group_id = ? ORDER BY user_id",
                    (group_id,),
                )
            ]
            banned = [
                r["user_id"]
                for r in tx.all(
                    "SELECT user_id FROM group_bans WHERE group_id = ? ORDER BY user_id",
                    (group_id,),
                )
            ]
        public = {  # what anyone may know: to encrypt to the group (e.g. a safety team)
            "id": group_id,
            "public_key": bytes(group["public_key"]),
            "admins": admins,
            "key_statement": None
            if group["key_statement"] is None
            else bytes(group["key_statement"]),
            "key_statement_device": group["key_statement_device"],
            "forward_only": bool(group["forward_only"]),
        }
        if caller.user_id not in admins and caller.user_id not in members:
            return public  # membership stays private to members
        return {
            **public,
            "raw_public_key": bytes(group["raw_public_key"]),
            "members": members,
            "preapproved": pre,
            "created_by": group["created_by"],
            "manager": group["manager"],
            "banned": banned,
        }

    def set_key_statement(self, caller: Caller, group_id: str, signature: bytes) -> None:
        """An admin device's signature over (group id, group public key), for clients."""
        check_id(group_id, "group id")

        def fn(tx: Tx) -> None:
            group = self._require_admin(tx, group_id, caller)
            signer = self._caller_signer(tx, caller)
            try:
                signer.verify(
                    GROUP_KEY_LABEL,
                    group_key_message(group_id, bytes(group["public_key"])),
                    signature,
                )
            except SignatureError:
                raise ServiceError("forbidden", "not this device's signature") from None
            tx.execute(
                "UPDATE sr_groups SET key_statement = ?, key_statement_device = ? WHERE id = ?",
                (signature, caller.require_device(), group_id),
            )

        self.ctx.run(caller, "group_key_statement", f"group:{group_id}", fn)

    def list_for(self, caller: Caller) -> list[str]:
        with self.ctx.db.transaction() as tx:
            rows = tx.all(
                "SELECT group_id FROM group_members WHERE user_id = ? UNION "
                "SELECT group_id FROM group_admins WHERE user_id = ? ORDER BY group_id",
                (caller.user_id, caller.user_id),
            )
        return [r["group_id"] for r in rows]

    def delete(self, caller: Caller, group_id: str) -> None:
        check_id(group_id, "group id")

        def fn(tx: Tx) -> None:
            self._require_admin(tx, group_id, caller)
            self.ctx.forget_transform_keys(
                tx, "SELECT transform_key FROM group_members WHERE group_id = ?", (group_id,)
            )
            for table in (
                "group_members",
                "group_admins",
                "group_preapproved",
                "group_values",
                "group_bans",
            ):
                tx.execute(f"DELETE FROM {table} WHERE group_id = ?", (group_id,))  # noqa: S608
            tx.execute("DELETE FROM sr_groups WHERE id = ?", (group_id,))

        self.ctx.run(caller, "delete_group", f"group:{group_id}", fn)

    def add_member(
        self, caller: Caller, group_id: str, user_id: str, transform_key: TransformKey
    ) -> None:
        """An admin adds a user with a group→user transform key signed by the admin's device."""
        check_id(group_id, "group id")
        check_id(user_id, "user id")

        def fn(tx: Tx) -> None:
            group = self._require_admin(tx, group_id, caller)
            self._insert_member(tx, caller, group, user_id, transform_key)

        self.ctx.run(caller, "add_member", f"group:{group_id}/user:{user_id}", fn)

    def add_members(
        self, caller: Caller, group_id: str, items: list[tuple[str, TransformKey]]
    ) -> dict[str, ServiceError | None]:
        """Many additions in one transaction (a meeting's joins): each is checked and
        audited on its own, and one refused item (a banned user, a bad key) spoils no other."""
        check_id(group_id, "group id")
        if not 1 <= len(items) <= MAX_BATCH_MEMBERS:
            raise ServiceError("malformed_input", f"1-{MAX_BATCH_MEMBERS} members per request")
        if len({u for u, _ in items}) != len(items):
            raise ServiceError("malformed_input", "a user appears twice")
        for user_id, _ in items:
            check_id(user_id, "user id")

        def fn(tx: Tx) -> dict[str, ServiceError | None]:
            group = self._require_admin(tx, group_id, caller)
            out: dict[str, ServiceError | None] = {}
            for user_id, tk in items:
                obj = f"group:{group_id}/user:{user_id}"
                try:
                    self._insert_member(tx, caller, group, user_id, tk)
                except ServiceError as exc:
                    out[user_id] = exc
                    self.ctx.record(tx, caller, "add_member", obj, f"refused:{exc.code}")
                    exc.audited = True
                    continue
                out[user_id] = None
                self.ctx.record(tx, caller, "add_member", obj, "ok")
            return out

        return self.ctx.run(caller, "add_members", f"group:{group_id}", fn)

    def _insert_member(
        self, tx: Tx, caller: Caller, group: Row, user_id: str, transform_key: TransformKey
    ) -> None:
        """Check one addition and make it (the group row is locked by the caller)."""
        group_id = str(group["id"])
        try:
            verified = transform_key.verify(self._caller_signer(tx, caller))
        except SignatureError:
            raise ServiceError("forbidden", "transform key not signed by this device") from None
        member = self.ctx.user_row(tx, user_id)
        if group["forward_only"] and tx.one(
            "SELECT 1 AS x FROM group_bans WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        ):
            raise ServiceError("banned", "lift the ban first (DELETE .../bans/{user})")
        if verified.key.from_public_key != self.ctx.public_key(group, "raw_public_key"):
            raise ServiceError("malformed_input", "transform key is not from this group")
        if verified.key.to_public_key != self.ctx.public_key(member):
            raise ServiceError("malformed_input", "transform key is not to this user")
        secret = self.ctx.augmentation_secret(
            _purpose(group_id), bytes(group["augmentation_secret"])
        )
        augmented = augment_transform_key(verified, secret, self.ctx.keys.signing_key)
        self.ctx.forget_transform_keys(tx, _MEMBER_KEY, (group_id, user_id))
        tx.execute(
            "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
        )
        generation = tx.one("SELECT generation FROM sr_groups WHERE id = ?", (group_id,))
        since = int(generation["generation"] if generation else 0) + 1  # the row is locked
        tx.execute("UPDATE sr_groups SET generation = ? WHERE id = ?", (since, group_id))
        tx.execute(
            "INSERT INTO group_members (group_id, user_id, transform_key, added_at, since) "
            "VALUES (?, ?, ?, ?, ?)",
            (group_id, user_id, augmented.key.to_bytes(), self.ctx.now(), since),
        )
        tx.execute(
            "DELETE FROM group_preapproved WHERE group_id = ? AND user_id = ?",
            (group_id, user_id),
        )

    def remove_member(self, caller: Caller, group_id: str, user_id: str) -> None:
        """An admin removes a member, or a member leaves. The transform key is deleted."""
        check_id(group_id, "group id")
        check_id(user_id, "user id")

        def fn(tx: Tx) -> None:
            if user_id != caller.user_id:
                self._require_admin(tx, group_id, caller)
            self.ctx.forget_transform_keys(tx, _MEMBER_KEY, (group_id, user_id))
            if not tx.execute(
                "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            ):
                raise ServiceError("not_found", "not a member")

        self.ctx.run(caller, "remove_member", f"group:{group_id}/user:{user_id}", fn)

    def add_admin(
        self, caller: Caller, group_id: str, user_id: str, encrypted_group_key: bytes
    ) -> None:
        check_id(group_id, "group id")
        check_id(user_id, "user id")
        parse_edek(encrypted_group_key)

        def fn(tx: Tx) -> None:
            self._require_admin(tx, group_id, caller)
            self.ctx.user_row(tx, user_id)
            tx.execute(
                "DELETE FROM group_admins WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )
            tx.execute(
                "INSERT INTO group_admins (group_id, user_id, encrypted_group_key) "
                "VALUES (?, ?, ?)",
                (group_id, user_id, encrypted_group_key),
            )

        self.ctx.run(caller, "add_admin", f"group:{group_id}/user:{user_id}", fn)

    def remove_admin(self, caller: Caller, group_id: str, user_id: str) -> None:
        check_id(group_id, "group id")
        check_id(user_id, "user id")

        def fn(tx: Tx) -> None:
            self._require_admin(tx, group_id, caller)
            count = tx.one("SELECT COUNT(*) AS n FROM group_admins WHERE group_id = ?", (group_id,))
            if not self._is_admin(tx, group_id, user_id):
                raise ServiceError("not_found", "not an admin")
            if count is not None and int(count["n"]) <= 1:
                raise ServiceError("conflict", "a group keeps at least one admin")
            tx.execute(
                "DELETE FROM group_admins WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )

        self.ctx.run(caller, "remove_admin", f"group:{group_id}/user:{user_id}", fn)

    def preapprove(self, caller: Caller, group_id: str, user_ids: list[str]) -> None:
        check_id(group_id, "group id")
        if not 1 <= len(user_ids) <= 1000:
            raise ServiceError("malformed_input", "1-1000 users per request")
        ids = [check_id(u, "user id") for u in user_ids]

        def fn(tx: Tx) -> None:
            self._require_admin(tx, group_id, caller)
            for uid in ids:
                tx.execute(
                    "DELETE FROM group_preapproved WHERE group_id = ? AND user_id = ?",
                    (group_id, uid),
                )
                tx.execute(
                    "INSERT INTO group_preapproved (group_id, user_id) VALUES (?, ?)",
                    (group_id, uid),
                )

        self.ctx.run(caller, "preapprove", f"group:{group_id}", fn)

    def register_value(
        self, caller: Caller, group_id: str, edek: bytes, expected_members: bytes
    ) -> None:
        """The manager registers a value encrypted to a forward-only group, at the group's
        current generation: exactly the members added by then may open it, and only if
        they are the members the manager expects (``expected_members`` is their
        :func:`members_digest`; anything else is ``membership_mismatch``). Registering
        again, even re-signed or re-encoded, changes nothing: a value is named by its
        ephemeral key, and the first generation stays."""
        check_id(group_id, "group id")
        fingerprint = value_fingerprint(parse_edek(edek))
        if len(expected_members) != 32:
            raise ServiceError("malformed_input", "members_digest must be 32 bytes")

        def fn(tx: Tx) -> None:
            group = self._require_admin(tx, group_id, caller)
            self._require_forward_only(group)
            if tx.one(
                "SELECT 1 AS x FROM group_values WHERE group_id = ? AND fingerprint = ?",
                (group_id, fingerprint),
            ):
                return
            members = tx.all("SELECT user_id FROM group_members WHERE group_id = ?", (group_id,))
            if not hmac.compare_digest(
                members_digest(r["user_id"] for r in members), expected_members
            ):
                raise ServiceError("membership_mismatch")
            count = tx.one("SELECT COUNT(*) AS n FROM group_values WHERE group_id = ?", (group_id,))
            if count is not None and int(count["n"]) >= MAX_VALUES_PER_GROUP:
                raise ServiceError("conflict", "the group has too many registered values")
            tx.execute(
                "INSERT INTO group_values (group_id, fingerprint, generation, registered_by) "
                "VALUES (?, ?, ?, ?)",
                (group_id, fingerprint, int(group["generation"]), caller.user_id),
            )

        self.ctx.run(
            caller, "register_value", f"group:{group_id}/value:{fingerprint.hex()[:16]}", fn
        )

    def claim_manager(self, caller: Caller, group_id: str) -> str | None:
        """An admin of a forward-only group takes its management; returns who had it. The
        previous manager's next change is refused (``not_manager``), so a claim is never
        quiet; the audit trail records it."""
        check_id(group_id, "group id")

        def fn(tx: Tx) -> str | None:
            group = self._group(tx, group_id, lock=True)
            self._require_forward_only(group)
            if not self._is_admin(tx, group_id, caller.user_id):
                raise ServiceError("not_admin")
            device_transform_key(tx, caller)
            tx.execute("UPDATE sr_groups SET manager = ? WHERE id = ?", (caller.user_id, group_id))
            previous: str | None = group["manager"]
            return previous

        return self.ctx.run(caller, "claim_manager", f"group:{group_id}", fn)

    def ban(self, caller: Caller, group_id: str, user_id: str) -> None:
        """The manager removes a user from a forward-only group, with its admin rights, and
        bans it: no later addition succeeds until the manager lifts the ban
        (:meth:`lift_ban`)."""
        check_id(group_id, "group id")
        check_id(user_id, "user id")

        def fn(tx: Tx) -> None:
            group = self._require_admin(tx, group_id, caller)
            self._require_forward_only(group)
            if user_id == caller.user_id:
                raise ServiceError("conflict", "the manager cannot ban itself")
            self.ctx.forget_transform_keys(tx, _MEMBER_KEY, (group_id, user_id))
            for table in ("group_members", "group_admins", "group_bans"):  # admin rights too
                tx.execute(
                    f"DELETE FROM {table} WHERE group_id = ? AND user_id = ?",  # noqa: S608
                    (group_id, user_id),
                )
            tx.execute(
                "INSERT INTO group_bans (group_id, user_id, banned_by, banned_at) "
                "VALUES (?, ?, ?, ?)",
                (group_id, user_id, caller.user_id, self.ctx.now()),
            )

        self.ctx.run(caller, "ban", f"group:{group_id}/user:{user_id}", fn)

    def lift_ban(self, caller: Caller, group_id: str, user_id: str) -> None:
        """The manager admits a banned user again (its next addition then succeeds)."""
        check_id(group_id, "group id")
        check_id(user_id, "user id")

        def fn(tx: Tx) -> None:
            group = self._require_admin(tx, group_id, caller)
            self._require_forward_only(group)
            tx.execute(
                "DELETE FROM group_bans WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )

        self.ctx.run(caller, "lift_ban", f"group:{group_id}/user:{user_id}", fn)

    def admin_key(self, caller: Caller, group_id: str) -> bytes:
        """The group private key's EDEK for the calling admin, transformed to its device."""
        check_id(group_id, "group id")

        def read(tx: Tx) -> tuple[bytes, bytes]:
            self._group(tx, group_id)
            row = tx.one(
                "SELECT encrypted_group_key FROM group_admins WHERE group_id = ? AND user_id = ?",
                (group_id, caller.user_id),
            )
            if row is None:
                raise ServiceError("not_admin")
            device = device_transform_key(tx, caller)
            return bytes(row["encrypted_group_key"]), bytes(device["transform_key"])

        def compute(data: tuple[bytes, bytes]) -> bytes:
            value = EncryptedValue.from_bytes(data[0])
            u2d = self.ctx.load_transform_key(data[1])
            return transform(value, [u2d], self.ctx.keys.signing_key).to_bytes()

        return self.ctx.run_computed(caller, "unwrap_group_key", f"group:{group_id}", read, compute)


def parse_edek(raw: bytes) -> EncryptedValue:
    """An untransformed EDEK from outside, parsed and validated once."""
    if not 1 <= len(raw) <= MAX_EDEK_BYTES:
        raise ServiceError("malformed_input", "encrypted key size out of range")
    try:
        value = EncryptedValue.from_bytes(raw)
    except MalformedInputError as exc:
        raise ServiceError("malformed_input", str(exc)) from None
    if value.level != 0:
        raise ServiceError("malformed_input", "expected an untransformed value")
    return value


def value_fingerprint(value: EncryptedValue) -> bytes:
    """What names a value: SHA-256, under its own label, of its ephemeral public key R.
    R rather than the whole encoding: an admin who re-signs or re-encodes an old value
    keeps its R, and so the generation it was first registered at."""
    return hashlib.sha256(labels.VALUE_FINGERPRINT + value.ephemeral_public_key.to_bytes()).digest()


def check_forward_only(tx: Tx, group_id: str, since: int, value: EncryptedValue) -> None:
    """In a forward-only group, refuse a value that no admin registered after the member
    (added at generation ``since``) joined. Other groups pass."""
    group = tx.one("SELECT forward_only FROM sr_groups WHERE id = ?", (group_id,))
    if group is None or not group["forward_only"]:
        return
    row = tx.one(
        "SELECT generation FROM group_values WHERE group_id = ? AND fingerprint = ?",
        (group_id, value_fingerprint(value)),
    )
    if row is None or int(row["generation"]) < since:
        raise ServiceError("before_membership")
