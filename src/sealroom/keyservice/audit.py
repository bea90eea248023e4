"""The audit log: append-only, hash-chained, and signed by the service.

Entry n stores H_n = SHA-256(label ‖ H_{n-1} ‖ fields of n) and the service's Ed25519
signature over H_n; ``audit_head`` holds the newest (n, H_n). Appends take the head row
for update, so the chain stays linear across worker processes. :func:`verify_chain`
recomputes everything and names the first entry that does not fit: an edited, deleted,
inserted or reordered row is detected. A deleted *tail* is detected against the head row;
an attacker able to rewrite the head too is caught only by a head someone kept earlier
(``GET /v1/audit`` returns it, signed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import SignatureError
from sealroom.keyservice.storage import Row, Tx

__all__ = ["AuditReport", "append", "head_signature", "verify_chain"]

LABEL: Final[bytes] = b"sealroom/v1/audit/entry"
HEAD_LABEL: Final[bytes] = b"sealroom/v1/audit/head"
GENESIS: Final[bytes] = bytes(32)


def _entry_hash(prev: bytes, row: Row) -> bytes:
    fields = [
        row["seq"],
        row["ts"],
        row["actor_user"],
        row["actor_device"],
        row["action"],
        row["object"],
        row["outcome"],
    ]
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
    return hashlib.sha256(LABEL + prev + body).digest()


def append(
    tx: Tx,
    signer: SigningKey,
    *,
    ts: int,
    actor_user: str | None,
    actor_device: str | None,
    action: str,
    obj: str | None,
    outcome: str,
) -> int:
    """Append one entry inside ``tx``; returns its sequence number."""
    lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
    head = tx.one("SELECT seq, entry_hash FROM audit_head WHERE id = 1" + lock)  # noqa: S608
    if head is None:  # pragma: no cover - created by the first migration
        raise RuntimeError("audit head missing")
    row: Row = {
        "seq": int(head["seq"]) + 1,
        "ts": ts,
        "actor_user": actor_user,
        "actor_device": actor_device,
        "action": action,
        "object": obj,
        "outcome": outcome,
    }
    digest = _entry_hash(bytes(head["entry_hash"]), row)
    tx.execute(
        "INSERT INTO audit (seq, ts, actor_user, actor_device, action, object, outcome, "
        "prev_hash, entry_hash, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["seq"],
            ts,
            actor_user,
            actor_device,
            action,
            obj,
            outcome,
            bytes(head["entry_hash"]),
            digest,
            signer.sign(LABEL, digest),
        ),
    )
    tx.execute("UPDATE audit_head SET seq = ?, entry_hash = ? WHERE id = 1", (row["seq"], digest))
    return int(row["seq"])


def head_signature(signer: SigningKey, seq: int, entry_hash: bytes) -> bytes:
    return signer.sign(HEAD_LABEL, seq.to_bytes(8, "big") + entry_hash)


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: bytes
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(rows: Sequence[Row], head: Row, key: VerifyingKey) -> AuditReport:
    """Check every link, hash and signature, and that the chain ends at ``head``."""
    prev, expected_seq = GENESIS, 1

    def bad(seq: int, reason: str) -> AuditReport:
        return AuditReport(
            False, len(rows), int(head["seq"]), bytes(head["entry_hash"]), seq, reason
        )

    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing")
        if bytes(row["prev_hash"]) != prev:
            return bad(seq, "does not link to the previous entry")
        digest = _entry_hash(prev, row)
        if digest != bytes(row["entry_hash"]):
            return bad(seq, "contents do not match the hash")
        try:
            key.verify(LABEL, digest, bytes(row["signature"]))
        except SignatureError:
            return bad(seq, "signature does not verify")
        prev, expected_seq = digest, seq + 1
    if int(head["seq"]) != expected_seq - 1 or bytes(head["entry_hash"]) != prev:
        return bad(expected_seq, "the chain does not end at the recorded head")
    return AuditReport(True, len(rows), int(head["seq"]), prev)
