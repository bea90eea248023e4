"""Prometheus metrics of both services, served at ``/metrics``.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder that
every worker can write (``sealroom keyservice --workers N`` makes a fresh one when it is not
set): each process then writes its values there, and ``/metrics`` in any worker adds them
up, so a scrape sees the whole service whichever worker answers.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "BOARD_POSTS",
    "BROKER_ERRORS",
    "CHANNELS_OPEN",
    "CHANNEL_CONNECTIONS",
    "COMPUTE_SECONDS",
    "CONTENT_TYPE",
    "FRAMES_DROPPED",
    "FRAMES_RELAYED",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "TRANSFORMS",
    "TRANSFORM_QUEUE",
    "render",
]

CONTENT_TYPE: Final[str] = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- both services: HTTP -----------------------------------------------------------------
REQUESTS: Final = Counter(
    "sealroom_http_requests",
    "HTTP requests answered, by service, route template, method and status",
    ["service", "route", "method", "status"],
)
REQUEST_SECONDS: Final = Histogram(
    "sealroom_http_request_duration_seconds",
    "HTTP request latency, by service, route template and method",
    ["service", "route", "method"],
    buckets=_LATENCY_BUCKETS,
)
RATE_LIMITED: Final = Counter(
    "sealroom_rate_limited",
    "Requests, handshakes or posts refused by a per-client rate limit (429)",
    ["service", "scope"],
)

# --- key service -------------------------------------------------------------------------
TRANSFORMS: Final = Counter(
    "sealroom_transforms",
    "Transforms asked for (one per item of a batch), by outcome: ok, refused, shed (503)",
    ["outcome"],
)
COMPUTE_SECONDS: Final = Histogram(
    "sealroom_transform_compute_seconds",
    "Time of the pairing work of a transform or unwrap, outside transactions, by action",
    ["action"],
    buckets=_LATENCY_BUCKETS,
)
TRANSFORM_QUEUE: Final = Gauge(
    "sealroom_transform_queue",
    "Transforms admitted and not finished (computing or waiting)",
    multiprocess_mode="livesum",
)

# --- conferencing service ----------------------------------------------------------------
CHANNELS_OPEN: Final = Gauge(
    "sealroom_channel_connections_open",
    "Channel connections open now",
    multiprocess_mode="livesum",
)
CHANNEL_CONNECTIONS: Final = Counter(
    "sealroom_channel_connections",
    "Channel handshakes, by outcome (accepted, or why refused or closed at connect)",
    ["outcome"],
)
BOARD_POSTS: Final = Counter(
    "sealroom_board_posts",
    "Board posts, by lane and outcome (ok, or the refusal code)",
    ["lane", "outcome"],
)
FRAMES_RELAYED: Final = Counter(
    "sealroom_frames_relayed", "Media frames delivered to a participant's socket"
)
FRAMES_DROPPED: Final = Counter(
    "sealroom_frames_dropped",
    "Media frames dropped, by reason: slow_receiver, broker_unavailable, refused",
    ["reason"],
)
BROKER_ERRORS: Final = Counter(
    "sealroom_broker_errors",
    "Broker operations that failed (after retries), by bus and operation",
    ["bus", "operation"],
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: every worker's values when
    ``PROMETHEUS_MULTIPROC_DIR`` is set, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE
    return generate_latest(REGISTRY), CONTENT_TYPE
