"""Transform throughput of the key service over HTTP (issue 3).

For SQLite and PostgreSQL, and for 1 and 2 uvicorn worker processes, it starts the
development IdP and the key service on 127.0.0.1, sets up a group with one member device,
then keeps ``--concurrency`` device-signed ``POST /v1/transform`` requests (group → user →
device, two hops) in flight for ``--seconds``. It prints requests per second, p50 and p99
latency, and the scale-up from 1 to 2 workers, and draws the figures to a PNG.

It also prints the pairing-bound ceiling measured in the same run (issue 10): two hops cost
3 pairings of math, so W workers on W cores can do at most W / (3 · one pairing) transforms
a second, and each figure as a fraction of it.

The load generator runs on the same 2-core machine as the workers, so it takes CPU from
them (its share is printed); it is kept lean (raw sockets, one signature per request). It
opens a new connection per request, so that the kernel spreads requests across the workers
as a load balancer would; with long-lived keep-alive connections most of them land on one
worker and the scale-up is hidden.

    .venv/bin/python bench/keyservice.py [--seconds 8] [--concurrency 8] [--out bench/out]

``--overload`` measures load shedding instead (issue 14): one worker on SQLite; its
capacity (transforms a second with 8 in flight), its latency unloaded (arrivals at 30 % of
capacity), then arrivals at twice the capacity for ``--seconds``, once with the bounded
transform queue (the default: 1 computing, 2 waiting, then 503) and once with a queue too
deep to ever fill (the old behaviour). Arrivals are open-loop (Poisson), each on a new
connection. It prints the admitted requests' p50/p99 against the unloaded p99, and draws
their latency distributions to ``keyservice-overload.png``.

    .venv/bin/python bench/keyservice.py --overload [--seconds 15] [--out bench/out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
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
from sealroom.demo.services import Services, free_port, wait_until_up
from sealroom.keyservice.settings import Settings
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


async def _exchange(host: str, port: int, request: bytes) -> tuple[int, float]:
    """One request on a connection of its own (so that the kernel spreads them across the
    workers, as a load balancer would); its status and latency."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
    finally:
        writer.close()
    return status, time.perf_counter() - start


def _request(signer: SigningKey, device: str, body: bytes) -> bytes:
    headers = sign_request(
        signer, device, method="POST", path="/v1/transform", query="", body=body, now=time.time()
    )
    lines = [
        "POST /v1/transform HTTP/1.1",
        "host: 127.0.0.1",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(
    url: str, signer: SigningKey, device: str, bodies: list[bytes], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Keep ``concurrency`` transforms in flight for ``seconds``. The load generator is
    lean (raw sockets, a signature per request and little else): it shares the 2 cores with
    the workers, and what it takes is printed."""
    host, _, port = url.removeprefix("http://").partition(":")
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        i = n
        while time.monotonic() < stop:
            request = _request(signer, device, bodies[i % len(bodies)])
            i += concurrency
            status, latency = await _exchange(host, int(port), request)
            if status == 200:
                latencies.append(latency)
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


def pairing_seconds(rounds: int = 300) -> float:
    """One pymcl pairing here, now (the median of ``rounds``): the unit of the ceiling."""
    from sealroom.crypto.pairing import G1, G2, pair

    p, q = G1.generator(), G2.generator()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        pair(p, q)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
        # One user sends every request, with --concurrency in flight: lift the per-user
        # rate limit, and queue as many as are in flight (capacity is measured, not shedding).
        unlimited = ("--rate-limit", "1000000", "--rate-burst", "1000000",
                     "--transform-queue", str(max(args.concurrency, 2)))  # fmt: skip
        servers = Services(tmp, url, workers=workers, keyservice_args=unlimited)
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


# --- load shedding (--overload) ------------------------------------------------------------


class _OverloadServices(Services):
    """The IdP and one key-service worker with the given transform queue (the per-user rate
    limit raised: one user sends everything here, and the queue is what is measured)."""

    def __init__(self, tmp: Path, queue: int, concurrency: int) -> None:
        self.dir = tmp
        idp_port, ks_port = free_port(), free_port()
        self.idp, self.ks = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{ks_port}"
        self.conf = ""
        jwks = f"{self.idp}/.well-known/jwks.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALROOM_")}
        env |= {"SEALROOM_JWKS_URL": jwks, "SEALROOM_LOG_LEVEL": "warning"}
        cmd = [sys.executable, "-m", "sealroom"]
        self.database_url, self.secrets = f"sqlite:///{tmp / 'ks.db'}", tmp / "secrets.json"
        self._procs = [
            subprocess.Popen(
                [*cmd, "idp", "--data-dir", str(tmp / "idp"), "--port", str(idp_port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        wait_until_up(jwks, self._procs[0])
        argv = [*cmd, "keyservice", "--port", str(ks_port), "--database-url", self.database_url,
                "--secrets-file", str(self.secrets), "--transform-queue", str(queue),
                "--transform-concurrency", str(concurrency),
                "--rate-limit", "1000000", "--rate-burst", "1000000",
                "--address-rate-limit", "1000000", "--address-rate-burst", "1000000"]  # fmt: skip
        self._procs.append(
            subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        try:
            wait_until_up(f"{self.ks}/healthz", self._procs[1])
        except BaseException:
            self.stop()  # the IdP too
            raise


async def open_loop(
    url: str, signer: SigningKey, device: str, bodies: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Poisson arrivals at ``rate`` a second for ``seconds``, each on its own connection,
    whatever the answers: the latency of each answer, by status."""
    rng = random.Random(14)  # noqa: S311 - arrival times, not a secret
    by_status: dict[int, list[float]] = {}
    limits = httpx.Limits(max_connections=4096, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) as http:

        async def one(i: int) -> None:
            body = bodies[i % len(bodies)]
            headers = sign_request(
                signer, device, method="POST", path="/v1/transform", query="", body=body,
                now=time.time(),
            )  # fmt: skip
            headers["content-type"] = "application/json"
            start = time.perf_counter()
            try:
                r = await http.post("/v1/transform", content=body, headers=headers)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            by_status.setdefault(status, []).append(time.perf_counter() - start)

        tasks = []
        began, cpu0 = time.monotonic(), time.process_time()
        at, i = began, 0
        while at < began + seconds:
            at += rng.expovariate(rate)
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
            i += 1
        await asyncio.gather(*tasks)
        elapsed, cpu = time.monotonic() - began, time.process_time() - cpu0
    ok = sorted(by_status.get(200, []))
    q = statistics.quantiles(ok, n=100) if len(ok) > 1 else [float("nan")] * 99
    return {
        "offered_rps": i / seconds,
        "sent": i,
        "admitted": len(ok),
        "admitted_rps": len(ok) / elapsed,
        "shed_503": len(by_status.get(503, [])),
        "limited_429": len(by_status.get(429, [])),
        "other": sum(len(v) for k, v in by_status.items() if k not in (200, 503, 429)),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": ok[-1] * 1000 if ok else float("nan"),
        "latencies": ok,
        "loadgen_cores": cpu / elapsed,
    }


def overload_run(
    queue: int, concurrency: int, capacity: float | None, seconds: float
) -> dict[str, Any]:
    """One key service with ``queue``: its capacity (unless given), its unloaded latency,
    and twice its capacity."""
    with tempfile.TemporaryDirectory(prefix="sealroom-overload-") as d:
        tmp = Path(d)
        servers = _OverloadServices(tmp, queue, concurrency)
        try:
            signer, device, bodies = setup(servers, tmp, 16)
            asyncio.run(load(servers.ks, signer, device, bodies, 1.0, 8))  # warm up
            if capacity is None:
                capacity = asyncio.run(load(servers.ks, signer, device, bodies, 6.0, 8))["rps"]
            assert capacity is not None
            calm = asyncio.run(open_loop(servers.ks, signer, device, bodies, 0.3 * capacity, 8.0))
            storm = asyncio.run(
                open_loop(servers.ks, signer, device, bodies, 2.0 * capacity, seconds)
            )
        finally:
            servers.stop()
    return {
        "queue": queue,
        "concurrency": concurrency,
        "capacity_rps": capacity,
        "unloaded": calm,
        "overload": storm,
    }


def overload_picture(runs: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no picture; pip install 'sealroom[demo]')")
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    curves = [("unloaded (30 % of capacity)", runs[0]["unloaded"]["latencies"])]
    for run in runs:
        label = (
            f"2x capacity, {run['concurrency']} computing + {run['queue']} waiting (503 beyond)"
            if run["queue"] < 1000
            else "2x capacity, unbounded queue (before)"
        )
        curves.append((label, run["overload"]["latencies"]))
    for label, lat in curves:
        if lat:
            xs = [x * 1000 for x in lat]
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=label)
    ax.set_xscale("log")
    ax.set(xlabel="latency of admitted transforms (ms, log)", ylabel="fraction answered")
    ax.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    ax.legend(loc="lower right")
    ax.set_title("Sealroom key service under twice its capacity: one worker, 2-core host")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"picture: {path}")


def overload_main(args: argparse.Namespace) -> int:
    print("[1/2] bounded queue ...", file=sys.stderr, flush=True)
    bounded = overload_run(args.transform_queue, args.transform_concurrency, None, args.seconds)
    print("[2/2] unbounded queue (as before), same offered load ...", file=sys.stderr, flush=True)
    unbounded = overload_run(
        100_000, args.transform_concurrency, bounded["capacity_rps"], args.seconds
    )
    calm = bounded["unloaded"]
    print(
        f"\ncapacity: {bounded['capacity_rps']:.1f} transforms/s (one worker, 8 in flight); "
        f"unloaded ({calm['offered_rps']:.0f}/s offered): p50 {calm['p50_ms']:.1f} ms, "
        f"p99 {calm['p99_ms']:.1f} ms, {calm['shed_503']} of {calm['sent']} shed"
    )
    print(f"twice the capacity for {args.seconds:.0f} s, Poisson arrivals, a connection each:")
    print("(queue: transforms computing + waiting per worker; beyond them 503 overloaded)")
    print(
        f"{'queue':<22}{'offered/s':>10}{'admitted/s':>11}{'shed 503':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'p99/unloaded':>14}{'load-gen CPU':>14}"
    )
    for run in (bounded, unbounded):
        o = run["overload"]
        name = (
            f"{run['concurrency']} + {run['queue']}"
            if run["queue"] < 1000
            else "unbounded (before)"
        )
        print(
            f"{name:<22}{o['offered_rps']:>10.1f}{o['admitted_rps']:>11.1f}"
            f"{o['shed_503']:>10}{o['p50_ms']:>9.1f}{o['p99_ms']:>9.1f}{o['max_ms']:>9.1f}"
            f"{o['p99_ms'] / calm['p99_ms']:>13.1f}x{o['loadgen_cores']:>13.0%}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    slim = [
        {**r, "unloaded": {k: v for k, v in r["unloaded"].items() if k != "latencies"},
         "overload": {k: v for k, v in r["overload"].items() if k != "latencies"}}
        for r in (bounded, unbounded)
    ]  # fmt: skip
    (args.out / "keyservice-overload.json").write_text(json.dumps(slim, indent=2))
    overload_picture([bounded, unbounded], args.out / "keyservice-overload.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument(
        "--overload", action="store_true", help="measure load shedding at twice the capacity"
    )
    defaults = Settings()
    parser.add_argument(
        "--transform-concurrency",
        type=int,
        default=defaults.transform_concurrency,
        help="with --overload: transforms computed at once (the service's default)",
    )
    parser.add_argument(
        "--transform-queue",
        type=int,
        default=defaults.transform_queue,
        help="with --overload: transforms waiting (the service's default)",
    )
    args = parser.parse_args(argv)
    if args.overload:
        return overload_main(args)
    backends = ["sqlite"] + (["postgres"] if _pg_available() else [])
    if "postgres" not in backends:
        print(f"PostgreSQL not reachable at {PG_DSN}: measuring SQLite only")
    results = []
    t_pair = pairing_seconds()
    configs = [(b, w) for b in backends for w in (1, 2)]
    for i, (backend, workers) in enumerate(configs, 1):
        print(
            f"[{i}/{len(configs)}] {backend}, {workers} worker(s) ...", file=sys.stderr, flush=True
        )
        results.append(run_one(backend, workers, args) | {"ceiling_rps": workers / (3 * t_pair)})
    print(f"\ntransform over HTTP: {args.concurrency} requests in flight, {args.seconds:.0f} s")
    print(
        f"{'backend':<10}{'workers':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'load-gen CPU':>14}{'ceiling':>10}{'of ceiling':>11}"
    )
    for r in results:
        print(
            f"{r['backend']:<10}{r['workers']:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['errors']:>8}{r['loadgen_cores']:>13.0%}"
            f"{r['ceiling_rps']:>10.0f}{r['rps'] / r['ceiling_rps']:>11.0%}"
        )
    print(
        f"ceiling: a transform's two hops cost 3 pairings of math; one pairing took "
        f"{t_pair * 1e6:.0f} µs here (median, measured before the runs), so W workers on W "
        f"cores could do at most W / (3 x {t_pair * 1e3:.3f} ms) transforms a second"
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
