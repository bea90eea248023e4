"""Load shedding: token buckets per client (``429`` with ``Retry-After``) and a bounded
queue in front of the transforms (``503`` with ``Retry-After`` when it is full).

Clocked objects take ``now`` (monotonic) and never read a clock, so tests use numbers.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sealroom.errors import SealroomError
from sealroom.ops import metrics

__all__ = ["ClientLimiter", "OverloadedError", "TokenBucket", "WorkQueue", "retry_after"]


class TokenBucket:
    """``burst`` at once, then ``rate`` a second."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self._tokens, self._last = float(burst), now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 if one is)."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.burst


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class ClientLimiter:
    """A token bucket per client key (an address, a user), at most ``max_clients`` kept:
    the least recently seen are forgotten first (a forgotten client starts with a full
    bucket, which only errs towards letting it in)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        if max_clients < 1:
            raise ValueError("max_clients >= 1")
        TokenBucket(rate, burst, 0.0)  # checks the numbers
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0.0 if ``key`` may go on now, else the seconds until it may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        if bucket.take(now):
            return 0.0
        return max(bucket.wait(now), 1.0 / self.rate)

    def __len__(self) -> int:
        return len(self._buckets)


class OverloadedError(SealroomError):
    """The queue is full: answer 503 and ask the client to come back later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("overloaded")
        self.retry_after = retry_after


class WorkQueue:
    """At most ``concurrency`` jobs run at once and ``queue`` more wait; a job beyond that
    is refused at once (:class:`OverloadedError`) instead of waiting without limit, so the
    admitted ones finish about as fast as without load. A job has a weight (the items of a
    batch); one heavier than the whole queue is admitted only when nothing else is in."""

    def __init__(self, concurrency: int, queue: int, seconds_per_job: float = 0.01) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency >= 1 and queue >= 0")
        self.concurrency, self.queue = concurrency, queue
        self.limit = concurrency + queue
        self.pending = 0
        self._seconds_per_job = seconds_per_job
        self._running: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._running is None or self._loop is not loop:
            self._running, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._running

    def reserve(self, weight: int = 1) -> int:
        """Take a place for a job of ``weight`` (its weight, at least 1), or raise
        :class:`OverloadedError` at once. Cheap: taken before the request is even
        authenticated, so a refused request costs almost nothing."""
        weight = max(1, weight)
        if self.pending > 0 and self.pending + weight > self.limit:
            # Come back once about what is queued now has been worked off.
            raise OverloadedError(self.pending * self._seconds_per_job / self.concurrency)
        self.pending += weight
        metrics.TRANSFORM_QUEUE.inc(weight)
        return weight

    def release(self, weight: int) -> None:
        self.pending -= weight
        metrics.TRANSFORM_QUEUE.dec(weight)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` places to compute (after :meth:`reserve`)."""
        async with self._semaphore():
            yield

    @asynccontextmanager
    async def admit(self, weight: int = 1) -> AsyncIterator[None]:
        """:meth:`reserve`, then :meth:`running`, then :meth:`release`."""
        taken = self.reserve(weight)
        try:
            async with self.running():
                yield
        finally:
            self.release(taken)
