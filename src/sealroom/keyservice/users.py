"""Users, devices and request authentication."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from sealroom.api.identity import (
    DEVICE_CERT_LABEL,
    REVOKE_PROOF_LABEL,
    device_certificate_message,
)
from sealroom.api.reqsig import MAX_SKEW_SECONDS, SignedRequest
from sealroom.crypto.pre import (
    AugmentationSecret,
    PublicKey,
    TransformKey,
    augment_public_key,
    augment_transform_key,
)
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import SignatureError
from sealroom.keyservice.context import Caller, Context, PendingNonce, check_id
from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.jwt_auth import JwtVerifier
from sealroom.keyservice.storage import ConflictError, Row, Tx

__all__ = [
    "HALF_BYTES",
    "LAST_USED_SECONDS",
    "SAFE_METHODS",
    "DeviceRegistration",
    "Users",
    "device_transform_key",
]

HALF_BYTES = 16
_DEVICE_KEY = "SELECT transform_key FROM devices WHERE id = ?"
#: Every this many seconds, a request also deletes every device's expired nonces.
#: A device's last use is written at most this often (a signed request writes nothing else
#: beside its nonce, which goes with what the request does, in one transaction).
LAST_USED_SECONDS = 60
#: Methods that change nothing: their signed requests are not replay-protected by a stored
#: nonce (a replay returns the same answer to whoever replays it, within the 60 s window).
SAFE_METHODS = frozenset({"GET", "HEAD"})
_ID_SUBJECT = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def _user_purpose(user_id: str) -> str:
    return f"user-augmentation/{user_id}"


@dataclass(frozen=True, slots=True)
class DeviceRegistration:
    device_id: str
    name: str
    signing_key: VerifyingKey
    public_key: PublicKey
    certificate: bytes
    transform_key: TransformKey


class Users:
    def __init__(self, ctx: Context, jwt: JwtVerifier) -> None:
        self.ctx, self.jwt = ctx, jwt

    # --- authentication ---

    def authenticate_jwt(self, token: str) -> Caller:
        try:
            claims = self.jwt.verify(token, self.ctx.clock())
            if not _ID_SUBJECT.fullmatch(claims.subject):
                raise ServiceError("invalid_token", "the subject is not a valid user id")
        except ServiceError as exc:
            self.ctx.refused(None, "authenticate", None, exc.code)
            exc.audited = True
            raise
        return Caller(claims.subject)

    def authenticate_device(
        self, req: SignedRequest, method: str, path: str, query: str, body: bytes
    ) -> Caller:
        ctx = self.ctx
        now = ctx.now()
        with ctx.db.read_transaction() as tx:
            row = tx.one(
                "SELECT user_id, signing_key, revoked_at, last_used_at FROM devices WHERE id = ?",
                (req.device_id,),
            )
            seen = (
                row is not None
                and method not in SAFE_METHODS
                and tx.one(
                    "SELECT 1 AS x FROM nonces WHERE device_id = ? AND nonce = ?",
                    (req.device_id, req.nonce),
                )
                is not None
            )
        try:
            if row is None:
                raise ServiceError("unknown_device")
            if row["revoked_at"] is not None:
                raise ServiceError("device_revoked")
            if abs(now - req.timestamp) > MAX_SKEW_SECONDS:
                raise ServiceError("stale_request")
            try:
                req.verify(
                    VerifyingKey.from_bytes(bytes(row["signing_key"])), method, path, query, body
                )
            except SignatureError:
                raise ServiceError("bad_signature") from None
            if seen:
                raise ServiceError("replayed_request")
            if row["last_used_at"] is None or now - int(row["last_used_at"]) >= LAST_USED_SECONDS:
                with ctx.db.transaction() as tx:  # at most once a minute per device
                    tx.execute(
                        "UPDATE devices SET last_used_at = ? WHERE id = ?", (now, req.device_id)
                    )
        except ServiceError as exc:
            # Until a request authenticates, its caller is nobody: a bad signature, a replay
            # or a stale request only names a device, so it is recorded as anonymous (the
            # device in the object) under the anonymous cap, never as that device's refusal.
            ctx.refused(None, "authenticate", f"device:{req.device_id}", exc.code)
            exc.audited = True
            raise
        if method in SAFE_METHODS:  # a signed read writes nothing (no nonce kept)
            return Caller(row["user_id"], req.device_id)
        nonce = PendingNonce(req.device_id, req.nonce, now + 2 * MAX_SKEW_SECONDS + 1)
        return Caller(row["user_id"], req.device_id, nonce)

    # --- users ---

    def escrow_half(self, caller: Caller) -> bytes:
        """The service's half of the split escrow secret, created on first request."""

        def fn(tx: Tx) -> bytes:
            purpose = f"escrow-half/{caller.user_id}"
            row = tx.one(
                "SELECT sealed_half FROM escrow_halves WHERE user_id = ?", (caller.user_id,)
            )
            if row is not None:
                return self.ctx.keys.open(purpose, bytes(row["sealed_half"]))
            half = os.urandom(HALF_BYTES)
            tx.execute(
                "INSERT INTO escrow_halves (user_id, sealed_half, created_at) VALUES (?, ?, ?)",
                (caller.user_id, self.ctx.keys.seal(purpose, half), self.ctx.now()),
            )
            return half

        return self.ctx.run(caller, "escrow_half", f"user:{caller.user_id}", fn)

    def create_user(
        self,
        caller: Caller,
        raw_public_key: PublicKey,
        signing_key: VerifyingKey,
        escrow_blob: bytes,
    ) -> tuple[PublicKey, PublicKey]:
        """Store a new user; returns (augmented public key A + S, the service part S)."""
        if not 1 <= len(escrow_blob) <= 1024:
            raise ServiceError("malformed_input", "escrow blob size out of range")

        def fn(tx: Tx) -> tuple[PublicKey, PublicKey]:
            secret = AugmentationSecret.generate()
            public = augment_public_key(raw_public_key, secret.public_part())
            try:
                tx.execute(
                    "INSERT INTO users (id, public_key, raw_public_key, signing_key, "
                    "augmentation_secret, escrow_blob, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        caller.user_id,
                        public.to_bytes(),
                        raw_public_key.to_bytes(),
                        signing_key.to_bytes(),
                        self.ctx.seal_augmentation_secret(_user_purpose(caller.user_id), secret),
                        escrow_blob,
                        self.ctx.now(),
                    ),
                )
            except ConflictError:
                raise ServiceError("conflict", "user already exists") from None
            return public, secret.public_part()

        return self.ctx.run(caller, "create_user", f"user:{caller.user_id}", fn)

    def me(self, caller: Caller) -> dict[str, Any]:
        with self.ctx.db.transaction() as tx:
            row = self.ctx.user_row(tx, caller.user_id)
        return {
            "id": row["id"],
            "public_key": bytes(row["public_key"]),
            "signing_key": bytes(row["signing_key"]),
            "escrow_blob": bytes(row["escrow_blob"]),
        }

    def public_keys(self, user_ids: list[str]) -> dict[str, dict[str, bytes]]:
        if len(user_ids) > 1000:
            raise ServiceError("malformed_input", "at most 1000 users per request")
        ids = [check_id(u, "user id") for u in user_ids]
        out: dict[str, dict[str, bytes]] = {}
        with self.ctx.db.transaction() as tx:
            for uid in ids:
                row = tx.one("SELECT public_key, signing_key FROM users WHERE id = ?", (uid,))
                if row is not None:
                    out[uid] = {
                        "public_key": bytes(row["public_key"]),
                        "signing_key": bytes(row["signing_key"]),
                    }
        return out

    # --- devices ---

    def register_device(self, caller: Caller, reg: DeviceRegistration) -> str:
        """Register a device of ``caller``'s user: from a JWT, or approved by another device."""
        check_id(reg.device_id, "device id")
        if not (1 <= len(reg.name) <= 200 and reg.name.isprintable()):
            raise ServiceError("malformed_input", "device name: 1-200 printable characters")

        def fn(tx: Tx) -> str:
            self._insert_checked(tx, caller, reg)
            return reg.device_id

        return self.ctx.run(caller, "register_device", f"device:{reg.device_id}", fn)

    def list_devices(self, caller: Caller) -> list[dict[str, Any]]:
        with self.ctx.db.transaction() as tx:
            rows = tx.all(
                "SELECT id, name, created_at, last_used_at, revoked_at, signing_key, "
                "public_key, certificate FROM devices WHERE user_id = ? ORDER BY created_at, id",
                (caller.user_id,),
            )
        return [dict(r) for r in rows]

    def device_info(self, device_id: str) -> dict[str, Any]:
        """Public facts about a device, so peers can pin its signing key via the certificate."""
        with self.ctx.db.transaction() as tx:
            row = tx.one(
                "SELECT id, user_id, signing_key, public_key, certificate, revoked_at, "
                "revoke_reason FROM devices WHERE id = ?",
                (check_id(device_id, "device id"),),
            )
        if row is None:
            raise ServiceError("not_found", "no such device")
        return dict(row)

    def device_by_signing_key(self, signing_key: bytes) -> dict[str, Any]:
        """Public facts about the device that owns ``signing_key`` (to check a signer)."""
        with self.ctx.db.transaction() as tx:
            row = tx.one(
                "SELECT id, user_id, signing_key, public_key, certificate, revoked_at, "
                "revoke_reason FROM devices WHERE signing_key = ?",
                (signing_key,),
            )
        if row is None:
            raise ServiceError("not_found", "no device has this signing key")
        return dict(row)

    def revoke_device(self, caller: Caller, device_id: str, proof: bytes | None = None) -> None:
        """Revoke from any device of the same user, or with a JWT and a proof signed by the
        user's escrowed signing key. The device's transform key is deleted at once."""
        check_id(device_id, "device id")

        def fn(tx: Tx) -> None:
            row = tx.one("SELECT user_id FROM devices WHERE id = ?", (device_id,))
            if row is None or row["user_id"] != caller.user_id:
                raise ServiceError("not_found", "no such device for this user")
            if caller.device_id is not None and caller.device_id != device_id:
                device_transform_key(tx, caller)  # a revoked device revokes nothing
            if caller.device_id is None:
                if proof is None:
                    raise ServiceError("forbidden", "revoking with a JWT needs a user proof")
                user = self.ctx.user_row(tx, caller.user_id)
                try:
                    VerifyingKey.from_bytes(bytes(user["signing_key"])).verify(
                        REVOKE_PROOF_LABEL, device_id.encode(), proof
                    )
                except SignatureError:
                    raise ServiceError("forbidden", "proof not signed by the user") from None
            self.ctx.forget_transform_keys(tx, _DEVICE_KEY, (device_id,))
            _revoke(tx, device_id, self.ctx.now(), "revoked")

        self.ctx.run(caller, "revoke_device", f"device:{device_id}", fn)

    def rotate_device(self, caller: Caller, reg: DeviceRegistration) -> str:
        """Replace the calling device's keys atomically: the new one in, the old one out."""
        old = caller.require_device()
        check_id(reg.device_id, "device id")

        def fn(tx: Tx) -> str:
            self._insert_checked(tx, caller, reg)
            self.ctx.forget_transform_keys(tx, _DEVICE_KEY, (old,))
            _revoke(tx, old, self.ctx.now(), "rotated")
            return reg.device_id

        return self.ctx.run(caller, "rotate_device", f"device:{old}->{reg.device_id}", fn)

    def _insert_checked(self, tx: Tx, caller: Caller, reg: DeviceRegistration) -> None:
        """Check the certificate and transform key against the user's key, augment, insert."""
        if caller.device_id is not None:
            device_transform_key(tx, caller)  # re-checked here: revocation may have raced
        user = self.ctx.user_row(tx, caller.user_id)
        user_signer = VerifyingKey.from_bytes(bytes(user["signing_key"]))
        message = device_certificate_message(
            reg.device_id, reg.signing_key.to_bytes(), reg.public_key.to_bytes()
        )
        try:
            user_signer.verify(DEVICE_CERT_LABEL, message, reg.certificate)
            verified = reg.transform_key.verify(user_signer)
        except SignatureError:
            raise ServiceError("forbidden", "not signed by the user's key") from None
        tk = verified.key
        if tk.from_public_key != self.ctx.public_key(user, "raw_public_key"):
            raise ServiceError("forbidden", "transform key is not from this user")
        if tk.to_public_key != reg.public_key:
            raise ServiceError("malformed_input", "transform key is not to this device")
        secret = self.ctx.augmentation_secret(
            _user_purpose(caller.user_id), bytes(user["augmentation_secret"])
        )
        augmented = augment_transform_key(verified, secret, self.ctx.keys.signing_key)
        try:
            tx.execute(
                "INSERT INTO devices (id, user_id, name, signing_key, public_key, "
                "certificate, transform_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reg.device_id,
                    caller.user_id,
                    reg.name,
                    reg.signing_key.to_bytes(),
                    reg.public_key.to_bytes(),
                    reg.certificate,
                    augmented.key.to_bytes(),
                    self.ctx.now(),
                ),
            )
        except ConflictError:
            raise ServiceError("conflict", "device id or key already registered") from None


def _revoke(tx: Tx, device_id: str, now: int, reason: str) -> None:
    tx.execute(
        "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?), transform_key = NULL, "
        "revoke_reason = COALESCE(revoke_reason, ?) WHERE id = ?",
        (now, reason, device_id),
    )
    # A revoked device is refused before its nonces are looked at: they guard nothing now.
    tx.execute("DELETE FROM nonces WHERE device_id = ?", (device_id,))


def device_transform_key(tx: Tx, caller: Caller) -> Row:
    """The calling device's row with a live transform key, or a refusal."""
    row = tx.one(
        "SELECT transform_key, revoked_at FROM devices WHERE id = ? AND user_id = ?",
        (caller.require_device(), caller.user_id),
    )
    if row is None or row["revoked_at"] is not None or row["transform_key"] is None:
        raise ServiceError("device_revoked")
    return row
