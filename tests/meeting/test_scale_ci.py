"""The 300-participant meeting of bench/meeting_scale.py, in CI (issue 10): two
conference processes on NATS (Redis where NATS is missing), two key-service workers on
PostgreSQL, 300 participants in four processes joining in a burst, then a leave. It checks
that everyone converges on the host's key and that the fresh key after the leave reaches
everyone else, and counts the key-service requests per join; the times are printed, not
asserted (bench/ measures speed)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import reachable
from tests.databases import pg_unavailable

BENCH = Path(__file__).parents[2] / "bench" / "meeting_scale.py"
N = 300


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("meeting_scale", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["meeting_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tree", ["auto", "off"])
def test_300_participants_across_two_conference_processes_and_two_key_service_workers(
    capsys: pytest.CaptureFixture[str], tree: str
) -> None:
    """With the key tree (the default from 32 participants: joiners open their sealed paths
    and a leave is keyed through the tree) and without it (every key opened through the
    key service)."""
    if (reason := pg_unavailable()) is not None:
        pytest.skip(reason)
    bus = "nats" if reachable(4222) else "redis" if reachable(6379) else None
    if bus is None:
        pytest.skip("neither NATS (4222) nor Redis (6379) is reachable on 127.0.0.1")
    bench = _bench()
    args = argparse.Namespace(sizes=str(N), procs=4, topology="split", bus=bus, tree=tree)
    (result,) = asyncio.run(bench.bench(args))
    with capsys.disabled():
        print(
            f"\n{N} participants ({bus}, 2 conference processes, 2 key-service workers, "
            f"key tree {tree}, "
            f"PostgreSQL): all held the key {result['burst_s']:.1f} s after the burst, "
            f"{result['requests_per_join']:.1f} key-service requests per join, the fresh key "
            f"after a leave reached the last one in {result['rekey_last_s']:.1f} s; "
            f"{result['reconnects']} channels closed under the clients (each reconnected)"
        )
    assert result["problems"] == 0
    # No per-poster look-ups: a handful per joiner (its card, the manager's device and user,
    # the transform), whatever N (it was about 2N before: 200 at N = 100).
    assert result["requests_per_join"] <= 8
