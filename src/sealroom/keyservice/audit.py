"""The audit log: append-only, hash-chained, and signed by the service.

Entry n stores H_n = SHA-256(label ‖ H_{n-1} ‖ fields of n) and the service's Ed25519
signature over H_n; ``audit_head`` holds the newest (n, H_n). Appends take the head row
for update, so the chain stays linear across worker processes. :func:`verify_chain`
recomputes everything and names the first entry that does not fit: an edited, deleted,
inserted or reordered row is detected. A deleted *tail* is detected against the head row.
An attacker able to rewrite the head too (a database insider) can cut the tail and rewind
the head, or wipe the log, and the chain still links: that is caught only against a
:class:`SignedHead` kept outside the database earlier, which the chain must still hold at
its position (``sealroom audit verify --expect-head``, ``GET /v1/audit/verify?expect_head=``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.keyservice.storage import Row, Tx

__all__ = [
    "GENESIS",
    "HEAD_LABEL",
    "HEAD_TEXT_PREFIX",
    "LABEL",
    "AuditReport",
    "SignedHead",
    "append",
    "head_signature",
    "verify_chain",
]

LABEL: Final[bytes] = b"sealroom/v1/audit/entry"
HEAD_LABEL: Final[bytes] = b"sealroom/v1/audit/head"
GENESIS: Final[bytes] = bytes(32)
HEAD_TEXT_PREFIX: Final[str] = "sealroom-audit-head:v1:"
_HEAD_TEXT = re.compile(r"(0|[1-9][0-9]{0,17}):([A-Za-z0-9_-]{43}):([A-Za-z0-9_-]{86})")


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


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The head of the chain, (n, H_n), signed by the service: what an operator keeps
    outside the database, so that a later verification can tell whether the log still
    extends it. Text form: ``sealroom-audit-head:v1:<n>:<H_n>:<signature>`` (base64url)."""

    #: The head's sequence number (0 for an empty log).
    seq: int
    #: H_seq (32 zero bytes for an empty log).
    entry_hash: bytes
    #: The service's Ed25519 signature over seq (8 bytes, big-endian) ‖ H_seq.
    signature: bytes

    @classmethod
    def sign(cls, signer: SigningKey, seq: int, entry_hash: bytes) -> SignedHead:
        return cls(seq, entry_hash, head_signature(signer, seq, entry_hash))

    def verify(self, key: VerifyingKey) -> None:
        """Raise SignatureError unless ``key`` signed this head."""
        key.verify(HEAD_LABEL, self.seq.to_bytes(8, "big") + self.entry_hash, self.signature)

    def to_text(self) -> str:
        return f"{HEAD_TEXT_PREFIX}{self.seq}:{b64e(self.entry_hash)}:{b64e(self.signature)}"

    @classmethod
    def from_text(cls, text: str) -> SignedHead:
        """Parse the text form exactly (surrounding whitespace aside)."""
        text = text.strip()
        match = (
            _HEAD_TEXT.fullmatch(text[len(HEAD_TEXT_PREFIX) :])
            if text.startswith(HEAD_TEXT_PREFIX)
            else None
        )
        if match is None:
            raise MalformedInputError(f"a signed audit head reads {HEAD_TEXT_PREFIX}<n>:<H>:<sig>")
        seq, digest, signature = match.groups()
        return cls(int(seq), b64d(digest, "head hash"), b64d(signature, "head signature"))


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: bytes
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(
    rows: Sequence[Row], head: Row, key: VerifyingKey, expect: SignedHead | None = None
) -> AuditReport:
    """Check every link, hash and signature, and that the chain ends at ``head``; with
    ``expect`` (a head kept earlier, its signature already checked), also that the chain
    holds that head at its position, i.e. that it extends it."""
    prev, expected_seq = GENESIS, 1
    kept = GENESIS if expect is not None and expect.seq == 0 else None

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
        if expect is not None and seq == expect.seq:
            kept = digest
    if int(head["seq"]) != expected_seq - 1 or bytes(head["entry_hash"]) != prev:
        return bad(expected_seq, "the chain does not end at the recorded head")
    if expect is not None:
        if expect.seq >= expected_seq:
            return bad(
                expected_seq,
                f"the log ends at entry {expected_seq - 1}, before the kept head "
                f"{expect.seq}: entries were cut",
            )
        if kept is None or not hmac.compare_digest(kept, expect.entry_hash):
            return bad(
                expect.seq,
                f"entry {expect.seq} is not the kept head: the log was cut and rewritten",
            )
    return AuditReport(True, len(rows), int(head["seq"]), prev)
