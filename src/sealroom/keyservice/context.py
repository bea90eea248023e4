"""What every key-service operation shares: storage, the service's keys, the clock, the
audit trail, and the parsing of stored keys."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sealroom.crypto.pairing import Scalar
from sealroom.crypto.pre import AugmentationSecret, PublicKey, TransformKey, VerifiedTransformKey
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.keyservice import audit
from sealroom.keyservice.errors import ServiceError
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.keyservice.storage import ConflictError, Database, Row, StorageError, Tx
from sealroom.ops import metrics

__all__ = [
    "ANONYMOUS_REFUSALS_PER_SECOND",
    "NONCE_SWEEP_SECONDS",
    "TRANSFORM_KEY_CACHE",
    "Caller",
    "Context",
    "GroupCommit",
    "PendingNonce",
    "check_id",
]

T = TypeVar("T")
ANONYMOUS_REFUSALS_PER_SECOND = 50
#: Expired nonces are deleted at most this often, by each process.
NONCE_SWEEP_SECONDS = 60
R = TypeVar("R")
_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ServiceError("malformed_input", f"{what}: 1-128 characters of [A-Za-z0-9._:@-]")
    return value


@dataclass(slots=True)
class PendingNonce:
    """A device-signed request's nonce, not stored yet."""

    device_id: str
    value: bytes
    expires_at: int
    stored: bool = False  # in a transaction that committed
    _tx: object = None  # the transaction it was last written in

    def store(self, tx: Tx) -> None:
        """Keep it in ``tx`` (once per transaction, and not after one that committed);
        ``replayed_request`` if it was used before."""
        if self.stored or self._tx is tx:
            return
        try:
            tx.execute(
                "INSERT INTO nonces (device_id, nonce, expires_at) VALUES (?, ?, ?)",
                (self.device_id, self.value, self.expires_at),
            )
        except ConflictError:
            raise ServiceError("replayed_request") from None
        self._tx = tx

    def committed(self, tx: Tx) -> None:
        """``tx`` committed: if it holds the nonce, the nonce is kept for good."""
        if self._tx is tx:
            self.stored = True


@dataclass(slots=True)
class _Write:
    work: Callable[[Tx], None]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    tx: Tx | None = None


class GroupCommit:
    """Writes from concurrent requests, committed together: the first request to find no
    commit under way runs one transaction for every write waiting (each in a savepoint of
    its own, so one failure spoils no other), then again for those that came meanwhile; the
    others wait for theirs. One commit (one fsync on PostgreSQL, one turn of the audit
    head's lock) serves many transforms, and each request returns only once its own write
    is committed: nothing is acknowledged before it is durable."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._flushing = False

    def submit(self, work: Callable[[Tx], None]) -> Tx:
        """Run ``work`` in a committed transaction; that transaction (its error if not)."""
        job = _Write(work)
        with self._lock:
            self._waiting.append(job)
            lead = not self._flushing
            self._flushing = True
        if lead:
            self._flush()
        job.done.wait()
        if job.error is not None:
            raise job.error
        if job.tx is None:  # pragma: no cover - every job ends with a tx or an error
            raise StorageError("a write ended without a transaction")
        return job.tx

    def _flush(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._flushing = False
                    return
            try:
                with self.db.transaction() as tx:
                    for job in batch:
                        tx.execute("SAVEPOINT sr_write")
                        try:
                            job.work(tx)
                        except Exception as exc:
                            tx.execute("ROLLBACK TO SAVEPOINT sr_write")
                            job.error = exc
                        else:
                            tx.execute("RELEASE SAVEPOINT sr_write")
                            job.tx = tx
            except BaseException as exc:  # the commit itself failed: nobody's write holds
                for job in batch:
                    job.error = job.error or exc
            for job in batch:
                job.done.set()


def _committed(caller: Caller | None, tx: Tx) -> None:
    if caller is not None and caller.nonce is not None:
        caller.nonce.committed(tx)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: a user from a JWT, or a user's registered device."""

    user_id: str
    device_id: str | None = None
    #: A signed request's nonce, kept in the same transaction as what the request does (its
    #: audit entry), so that a request costs one write; None for reads (GETs do not write).
    nonce: PendingNonce | None = field(default=None, compare=False)

    def require_device(self) -> str:
        if self.device_id is None:
            raise ServiceError("unauthenticated", "this call needs a device-signed request")
        return self.device_id


#: Verified transform keys a process keeps (about 3.7 KiB each with their bytes).
TRANSFORM_KEY_CACHE = 8192


class _KeyCache:
    """Verified transform keys by their stored bytes, least recently used first out. A key
    deleted from the database (a revoked or rotated device, a removed member, a deleted
    group) is forgotten here too by the process that deleted it, so that what the service
    deletes does not linger in its memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[bytes, bytes], VerifiedTransformKey] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: bytes, service_key: VerifyingKey) -> VerifiedTransformKey:
        index = (raw, service_key.to_bytes())
        with self._lock:
            found = self._keys.get(index)
            if found is not None:
                self._keys.move_to_end(index)
                return found
        verified = TransformKey.from_bytes(raw).verify(service_key)
        with self._lock:
            self._keys[index] = verified
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)
        return verified

    def forget(self, raw: bytes) -> None:
        with self._lock:
            for index in [i for i in self._keys if i[0] == raw]:
                del self._keys[index]

    def __len__(self) -> int:
        return len(self._keys)


_CACHE = _KeyCache(TRANSFORM_KEY_CACHE)


class Context:
    def __init__(
        self, db: Database, keys: ServiceKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock
        self.verifying_key = keys.signing_key.verifying_key
        self._anon_second, self._anon_count, self._anon_skipped = 0, 0, 0
        self._anon_lock = threading.Lock()
        self._swept_at = 0  # when this process last deleted the expired nonces
        self._writes = GroupCommit(db)

    def now(self) -> int:
        return int(self.clock())

    def run(self, caller: Caller | None, action: str, obj: str | None, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one transaction with an audit entry; audit a refusal apart."""
        try:
            with self.db.transaction() as tx:
                if caller is not None and caller.nonce is not None:
                    caller.nonce.store(tx)  # first: a replay changes nothing
                result = fn(tx)
                self.record(tx, caller, action, obj, "ok")
            _committed(caller, tx)
            return result
        except (ServiceError, MalformedInputError, SignatureError, ConflictError) as exc:
            raise self._refusal(caller, action, obj, exc) from None

    def run_computed(
        self,
        caller: Caller | None,
        action: str,
        obj: str | None,
        read: Callable[[Tx], R],
        compute: Callable[[R], T],
    ) -> T:
        """Read in a short transaction, compute outside it (CPU-heavy crypto holds no
        database lock), then record the audit entry in a short write transaction."""
        try:
            with self.db.read_transaction() as tx:
                data = read(tx)
            started = time.perf_counter()
            result = compute(data)
            metrics.COMPUTE_SECONDS.labels(action).observe(time.perf_counter() - started)
        except (ServiceError, MalformedInputError, SignatureError, ConflictError) as exc:
            raise self._refusal(caller, action, obj, exc) from None
        try:
            tx = self._writes.submit(lambda tx: self.record(tx, caller, action, obj, "ok"))
        except (ServiceError, ConflictError) as exc:  # a replay that raced its first use
            raise self._refusal(caller, action, obj, exc) from None
        _committed(caller, tx)
        return result

    def _refusal(
        self, caller: Caller | None, action: str, obj: str | None, exc: Exception
    ) -> ServiceError:
        """Audit a refusal and return it as a ServiceError."""
        if isinstance(exc, ServiceError):
            err = exc
        elif isinstance(exc, MalformedInputError):
            err = ServiceError("malformed_input", str(exc))
        elif isinstance(exc, ConflictError):
            err = ServiceError("conflict", "a concurrent change got there first; retry")
        else:
            err = ServiceError("forbidden", str(exc))
        if not err.audited:
            self.refused(caller, action, obj, err.code)
            err.audited = True
        return err

    def record(
        self, tx: Tx, caller: Caller | None, action: str, obj: str | None, outcome: str
    ) -> None:
        if caller is not None and caller.nonce is not None:
            caller.nonce.store(tx)  # a replay fails here, and the whole transaction with it
        self._sweep(tx)
        audit.append(
            tx,
            self.keys.signing_key,
            ts=self.now(),
            actor_user=caller.user_id if caller else None,
            actor_device=caller.device_id if caller else None,
            action=action,
            obj=obj,
            outcome=outcome,
        )

    def refused(self, caller: Caller | None, action: str, obj: str | None, code: str) -> None:
        """Record a refusal. Anonymous refusals (``caller`` None: no credentials, or a
        request that names a device but did not authenticate as it) are capped per second,
        so that nobody can flood the audit log; the next entry counts what was skipped."""
        outcome = f"refused:{code}"
        if caller is None:
            with self._anon_lock:
                skipped = self._count_anonymous()
            if skipped < 0:
                return
            if skipped:
                outcome += f" (+{skipped} skipped)"
        try:
            with self.db.transaction() as tx:
                self.record(tx, caller, action, obj, outcome)
            _committed(caller, tx)
        except ServiceError:  # its nonce was used before: the request is a replay
            if caller is None or caller.nonce is None:
                raise
            caller.nonce.stored = True
            with self.db.transaction() as tx:
                self.record(tx, caller, action, obj, "refused:replayed_request")

    def store_nonce(self, caller: Caller) -> None:
        """A signed request that recorded nothing still uses up its nonce."""
        if caller.nonce is not None and not caller.nonce.stored:
            with self.db.transaction() as tx:
                caller.nonce.store(tx)
                self._sweep(tx)
            _committed(caller, tx)

    def _sweep(self, tx: Tx) -> None:
        """Delete expired nonces (devices that went quiet never come back for theirs),
        at most once a NONCE_SWEEP_SECONDS per process, in a write already under way."""
        now = self.now()
        if now - self._swept_at >= NONCE_SWEEP_SECONDS:
            self._swept_at = now
            tx.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))

    def _count_anonymous(self) -> int:
        """-1 to skip this entry, else how many were skipped before it."""
        second = int(self.clock())
        if second != self._anon_second:
            self._anon_second, self._anon_count = second, 0
        self._anon_count += 1
        if self._anon_count > ANONYMOUS_REFUSALS_PER_SECOND:
            self._anon_skipped += 1
            return -1
        skipped, self._anon_skipped = self._anon_skipped, 0
        return skipped

    # --- stored keys ---

    def load_transform_key(self, raw: bytes) -> VerifiedTransformKey:
        """A stored (augmented, service-signed) transform key, verified; cached by content."""
        return _CACHE.get(bytes(raw), self.verifying_key)

    def forget_transform_keys(self, tx: Tx, select: str, params: tuple[object, ...]) -> None:
        """Drop from the cache the transform keys that ``select`` (a query of one
        ``transform_key`` column) finds: they are about to be deleted."""
        for row in tx.all(select, params):
            if row["transform_key"] is not None:
                _CACHE.forget(bytes(row["transform_key"]))

    def augmentation_secret(self, purpose: str, sealed: bytes) -> AugmentationSecret:
        return AugmentationSecret(Scalar.from_bytes(self.keys.open(purpose, bytes(sealed))))

    def seal_augmentation_secret(self, purpose: str, secret: AugmentationSecret) -> bytes:
        return self.keys.seal(purpose, secret.expose_secret_bytes())

    @staticmethod
    def public_key(row: Row, column: str = "public_key") -> PublicKey:
        return PublicKey.from_bytes(bytes(row[column]))

    def user_row(self, tx: Tx, user_id: str) -> Row:
        row = tx.one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise ServiceError("not_found", "no such user")
        return row
