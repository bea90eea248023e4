"""Transform throughput of the key service over HTTP (issue 3).

For SQLite and PostgreSQL, and for 1 and 2 uvicorn worker processes, it starts the
development IdP and the key service on 127.0.0.1, sets up a group with one member device,
then keeps ``--concurrency`` device-signed ``POST /v1/transform`` requests (group → user →
device, two hops) in flight for ``--seconds``. It prints requests per second, p50 and p99
latency, and the scale-up from 1 to 2 workers, and draws the figures to a PNG.

The load generator runs on the same 2-core machine as the workers, so it takes CPU from
them (its share is printed). It opens a new connection per request, so that the kernel
spreads requests across the workers as a load balancer would; with long-lived keep-alive
connections most of them land on one worker and the scale-up is hidden.

    .venv/bin/python bench/keyservice.py [--seconds 8] [--concurrency 8] [--out bench/out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sealroom.api.encoding import b64e
from sealroom.api.reqsig import sign_request
from sealroom.crypto.pre import PublicKey, encrypt, generate_plaintext
from sealroom.crypto.signing import SigningKey
from sealroom.demo.services import Services
from sealroom.sdk import BasicSplitTrust, SyncClient

PG_DSN = os.environ.get("SEALROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _client(servers: Services, tmp: Path, user: str) -> SyncClient:
    def token(audience: str) -> str:
        return servers.token(user, audience)

    def provider_half() -> bytes:
        return servers.provider_half(user)

    return SyncClient(
        servers.ks,
        jwt=token,
        secret=BasicSplitTrust(provider_half),
        keystore=tmp / user / "device.json",
    )


def setup(servers: Services, tmp: Path, distinct_edeks: int) -> tuple[SigningKey, str, list[bytes]]:
    """A group 'bench' with member 'bob'; returns bob's device signer, id and request bodies."""
    with _client(servers, tmp, "alice") as alice, _client(servers, tmp, "bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("bench")
        alice.add_member("bench", "bob")
        group_key: PublicKey = alice.group_public_key("bench")
        signer = alice.client.ks.signing_key
        assert signer is not None
        bodies = [
            json.dumps(
                {
                    "edek": b64e(encrypt(generate_plaintext(), group_key, signer).to_bytes()),
                    "target": {"kind": "group", "id": "bench"},
                }
            ).encode()
            for _ in range(distinct_edeks)
        ]
        ks = bob.client.ks
        assert ks.signing_key is not None
        assert ks.device_id is not None
        return ks.signing_key, ks.device_id, bodies


async def load(
    url: str, signer: SigningKey, device: str, bodies: list[bytes], seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as http:

        async def worker(n: int) -> None:
            nonlocal errors
            i = n
            while time.monotonic() < stop:
                body = bodies[i % len(bodies)]
                i += concurrency
                headers = sign_request(
                    signer,
                    device,
                    method="POST",
                    path="/v1/transform",
                    query="",
                    body=body,
                    now=time.time(),
                )
                headers["content-type"] = "application/json"
                start = time.perf_counter()
                r = await http.post("/v1/transform", content=body, headers=headers)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

        began, cpu0 = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed, cpu = time.monotonic() - began, time.process_time() - cpu0
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "loadgen_cores": cpu / elapsed,
    }


def run_one(backend: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sealroom-bench-") as d:
        tmp = Path(d)
        schema = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'ks.db'}"
        else:
            import psycopg

            schema = f"sr_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{PG_DSN}?schema={schema}"
        servers = Services(tmp, url, workers=workers)
        try:
            signer, device, bodies = setup(servers, tmp, 16)
            asyncio.run(load(servers.ks, signer, device, bodies, 1.0, args.concurrency))
            result = asyncio.run(
                load(servers.ks, signer, device, bodies, args.seconds, args.concurrency)
            )
        finally:
            servers.stop()
            if schema is not None:
                import psycopg

                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {"backend": backend, "workers": workers, **result}


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


def picture(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no picture)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for backend in sorted({r["backend"] for r in results}):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["workers"])
        ax1.plot([r["workers"] for r in rows], [r["rps"] for r in rows], "o-", label=backend)
        ax2.plot([r["workers"] for r in rows], [r["p99_ms"] for r in rows], "o-", label=backend)
    ax1.set(title="transforms per second", xlabel="worker processes", xticks=[1, 2])
    ax2.set(title="p99 latency (ms)", xlabel="worker processes", xticks=[1, 2])
    ax1.legend()
    ax1.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    fig.suptitle("Sealroom key service: group→user→device transforms over HTTP, 2-core host")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"picture: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)
    backends = ["sqlite"] + (["postgres"] if _pg_available() else [])
    if "postgres" not in backends:
        print(f"PostgreSQL not reachable at {PG_DSN}: measuring SQLite only")
    results = []
    configs = [(b, w) for b in backends for w in (1, 2)]
    for i, (backend, workers) in enumerate(configs, 1):
        print(
            f"[{i}/{len(configs)}] {backend}, {workers} worker(s) ...", file=sys.stderr, flush=True
        )
        results.append(run_one(backend, workers, args))
    print(f"\ntransform over HTTP: {args.concurrency} requests in flight, {args.seconds:.0f} s")
    print(
        f"{'backend':<10}{'workers':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'load-gen CPU':>14}"
    )
    for r in results:
        print(
            f"{r['backend']:<10}{r['workers']:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['errors']:>8}{r['loadgen_cores']:>13.0%}"
        )
    for backend in backends:
        one = next(r for r in results if r["backend"] == backend and r["workers"] == 1)
        two = next(r for r in results if r["backend"] == backend and r["workers"] == 2)
        print(f"scale-up 1 → 2 workers on {backend}: {two['rps'] / one['rps']:.2f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "keyservice.json").write_text(json.dumps(results, indent=2))
    picture(results, args.out / "keyservice.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
