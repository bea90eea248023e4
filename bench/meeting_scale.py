"""Large meetings on real services: N participants joining in a burst, then a leave (issue 10).

It starts the development IdP, the key service and the conferencing service on 127.0.0.1
(``--topology single``: SQLite, one key-service worker, one conference process on the
in-process bus; ``--topology split``: PostgreSQL, two key-service workers, and two conference
processes on Redis or NATS, the participants spread over both), creates N users, and runs
lightweight participants (the SDK's ``MeetingClient``, no codec) in ``--procs`` processes.
For each N the host starts a meeting with the N as invitees, then all N join at once. It
reports:

* **burst**: seconds from the joins until every participant holds the host's current key;
* **requests per join**: key-service requests made during the burst, by everyone, over N;
* **rekey**: one participant leaves; after the debounce (1 s here) the host posts a fresh
  key, and each of the others must have it opened by the key service: seconds from the
  host's post to each participant's install (p50, p99, the last one).

Goals on this 2-core machine (issue 10): 1,000 joining in a burst hold the key within 60 s,
and a rekey reaches all 1,000 within 10 s. Everything shares the two cores with the load
(the participants' processes), whose CPU share is printed.

    .venv/bin/python bench/meeting_scale.py [--sizes 10,100,300,1000] [--procs 4]
        [--topology single|split] [--bus redis|nats] [--out bench/out]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sealroom._process import stop_processes
from sealroom.api.encoding import b64d
from sealroom.crypto.escrow import Argon2idParams
from sealroom.demo.services import free_port, wait_until_up
from sealroom.idp import PROVIDER_AUDIENCE
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk import (
    BasicSplitTrust,
    BoardLost,
    ChannelClosed,
    Client,
    InternalError,
    KeyInstalled,
    KeyUnavailable,
    NotAdmitted,
    Rekeyed,
)
from sealroom.sdk.meeting import MeetingClient

PG_DSN = os.environ.get("SEALROOM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Test accounts: the escrow KDF at its floor (the escrow module refuses lower), so that
#: creating a thousand users takes seconds; joins do not use it.
CHEAP_ESCROW = Argon2idParams(time_cost=1, memory_kib=8 * 1024, parallelism=1)
TIMING = Timing(leave_debounce=1.0, ratchet_interval=3600.0)
HOST = "host"
#: A run in which no participant installs a key for this long has stalled: it says who is
#: behind and why (report_stall) instead of waiting out the ten minutes.
STALL_SECONDS = 90.0


def log(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


# --- the services ---------------------------------------------------------------------------


class Topology:
    """The IdP, the key service and one or two conference processes, as child processes."""

    def __init__(self, tmp: Path, kind: str, bus: str) -> None:
        self.tmp, self.procs, self.schema = tmp, list[subprocess.Popen[bytes]](), None
        cmd = [sys.executable, "-m", "sealroom"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALROOM_")}
        ports = [free_port() for _ in range(4)]
        self.idp = f"http://127.0.0.1:{ports[0]}"
        self.ks = f"http://127.0.0.1:{ports[1]}"
        jwks = f"{self.idp}/.well-known/jwks.json"
        if kind == "split":
            import psycopg

            self.schema = f"sr_scale_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {self.schema}")
            db, workers = f"{PG_DSN}?schema={self.schema}", "2"
            prefix = f"srscale{uuid.uuid4().hex[:8]}"
            bus_args = ["--bus", bus, "--prefix", prefix]
            confs = ports[2:4]
        else:
            db, workers, bus_args, confs = f"sqlite:///{tmp / 'ks.db'}", "1", [], ports[2:3]
        self.bus, self.prefix = (bus, bus_args[-1]) if bus_args else ("inprocess", "")
        self.confs = [f"http://127.0.0.1:{p}" for p in confs]
        # Every simulated participant connects from 127.0.0.1, so the per-address limits
        # (meant for one client's address, not a thousand people's) are lifted here; that
        # includes the burst of the user limit, under which anonymous requests (each
        # client's first GET /v1/service) count by address.
        ks_limits = ["--address-rate-limit", "1000000", "--address-rate-burst", "10000000",
                     "--rate-burst", "1000000"]  # fmt: skip
        conf_limits = ["--connect-rate", "1000000", "--connect-burst", "1000000"]
        commands = [
            [*cmd, "idp", "--data-dir", str(tmp / "idp"), "--port", str(ports[0])],
            [*cmd, "keyservice", "--database-url", db, "--secrets-file", str(tmp / "s.json"),
             "--jwks-url", jwks, "--port", str(ports[1]), "--workers", workers, *ks_limits],
            *([*cmd, "conference", "--jwks-url", jwks, "--port", str(p), *bus_args,
               *conf_limits] for p in confs),
        ]  # fmt: skip
        # Each service's log goes to a file of the run's own (a stalled run shows the
        # warnings; BENCH_LOGS names a folder that keeps them after the run).
        logs = Path(os.environ.get("BENCH_LOGS") or tmp)
        logs.mkdir(parents=True, exist_ok=True)
        names = ["idp", "keyservice", *(f"conference-{i}" for i in range(len(confs)))]
        self.logs = [logs / f"{name}.log" for name in names]
        self.procs = []
        for c, path in zip(commands, self.logs, strict=True):
            with path.open("ab") as sink:
                self.procs.append(subprocess.Popen(c, env=env, stdout=sink, stderr=sink))
        try:
            wait_until_up(jwks, self.procs[0])
            wait_until_up(f"{self.ks}/healthz", self.procs[1])
            for url, proc in zip(self.confs, self.procs[2:], strict=True):
                wait_until_up(f"{url}/healthz", proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_processes(self.procs, grace=10.0)
        if self.schema is not None:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {self.schema} CASCADE")
        if self.bus == "redis":
            import redis

            r = redis.Redis()
            for key in r.scan_iter(f"{self.prefix}:*"):
                r.delete(key)
            r.close()
        elif self.bus == "nats":
            from sealroom.conference.bus import NatsBus

            async def drop() -> None:
                nats_bus = NatsBus(prefix=self.prefix)
                try:
                    await nats_bus.delete_stream()
                finally:
                    await nats_bus.close()

            try:  # (in a thread of its own: stop() may run inside an event loop)
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, drop()).result()
            except Exception as exc:  # nothing was posted: no stream
                log(f"(no NATS stream to delete: {type(exc).__name__})")


# --- one participant's SDK client, counting its key-service requests -------------------------


_IDP: dict[str, httpx.AsyncClient] = {}


def make_client(spec: dict[str, Any], user: str) -> Client:
    idp = spec["idp"]

    def http() -> httpx.AsyncClient:  # one per process (a client per call costs ~30 ms)
        if idp not in _IDP:
            _IDP[idp] = httpx.AsyncClient(base_url=idp, timeout=60.0)
        return _IDP[idp]

    async def post(path: str, **kwargs: Any) -> httpx.Response:
        # The development IdP drops connections when a thousand clients ask at once: the
        # bench asks again (the IdP is not what it measures).
        for attempt in range(5):
            try:
                return await http().post(path, **kwargs)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    async def token(audience: str) -> str:
        r = await post("/v1/token", json={"user_id": user, "audience": audience})
        return str(r.json()["token"])

    async def half() -> bytes:
        headers = {"authorization": "Bearer " + await token(PROVIDER_AUDIENCE)}
        r = await post("/v1/escrow-half", headers=headers)
        return b64d(r.json()["half"])

    client = Client(
        spec["ks"],
        jwt=token,
        secret=BasicSplitTrust(half),
        keystore=Path(spec["keystores"]) / user / "device.json",
        escrow_params=CHEAP_ESCROW,
    )
    client.requests = 0  # type: ignore[attr-defined]
    call = client._call

    async def counting(*args: Any, **kwargs: Any) -> Any:
        client.requests += 1  # type: ignore[attr-defined]
        return await call(*args, **kwargs)

    client._call = counting  # type: ignore[method-assign]
    return client


# --- the participants' processes -----------------------------------------------------------


def session_state(mc: MeetingClient) -> dict[str, Any]:
    """What a stalled run reports of one participant (bench diagnostics, not an API)."""
    s = mc.session
    d = s._duties
    tasks = {"reader": mc._reader, "processor": mc._processor}

    def status(t: asyncio.Task[None] | None) -> str:
        if t is None or not t.done():
            return "none" if t is None else "running"
        return "cancelled" if t.cancelled() else repr(t.exception())

    return {
        "state": str(s.state),
        "epoch": s.epoch,
        "board_epoch": s._board_epoch,
        "manager": s.manager,
        "heard_own_announce": s._heard_own_announce,
        "pending": None if s._pending_post is None else s._pending_post.body.get("epoch"),
        "opening": None if s._opening is None else s._opening.body.get("epoch"),
        "path_offer": None if s._path_offer is None else s._path_offer[0],
        "path": None if s._path is None else s._path.epoch,
        "calls": sorted(c.op for c in s._calls.values()),
        "inbox": mc._inbox.qsize(),
        "deferred": len(mc._deferred),
        "tasks": {k: status(t) for k, t in tasks.items()},
        "present": len(s.present),
        "members": len(s.members),
        "duties": {
            "joining": len(d.joining),
            "join_at": d.join_at,
            "adding": d.adding,
            "unpublished": None if d.unpublished is None else d.unpublished.epoch,
            "unpublished_waits": d.unpublished_waits,
            "register_retry_at": d.register_retry_at,
            "removing": sorted(d.removing)[:5],
            "reconciling": d.reconciling,
            "claiming": d.claiming,
            "rekey_at": d.rekey_at,
            "tree": None if d.tree is None else len(d.tree),
        },
        "timer": None if mc._timer is None else mc._timer.when(),
        "now": mc._now(),
    }


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def worker(spec: dict[str, Any]) -> None:
    """Run the participants ``spec["users"]``: provision, or join on ``go`` and report every
    key they install (user, epoch, wall time) on stdout; commands come on stdin."""
    users: list[str] = spec["users"]
    clients = {u: make_client(spec, u) for u in users}
    gate = asyncio.Semaphore(16)  # setup, not measured: no need to storm the services

    async def initialize(c: Client) -> None:
        async with gate:
            await c.initialize()

    await asyncio.gather(*(initialize(c) for c in clients.values()))
    if spec["mode"] == "provision":
        emit(kind="provisioned", n=len(users))
        for c in clients.values():
            await c.aclose()
        return
    config = MeetingConfig(spec["meeting"], host=HOST, invitees=tuple(spec["invitees"]))
    meetings: dict[str, MeetingClient] = {}
    for i, (u, c) in enumerate(clients.items()):
        conf = spec["confs"][i % len(spec["confs"])]
        meetings[u] = MeetingClient(c, conf, config, timing=TIMING)

    async def watch(user: str, mc: MeetingClient) -> None:
        async for event in mc.events():
            if isinstance(event, KeyInstalled | Rekeyed):
                emit(kind="key", user=user, epoch=event.epoch, t=time.time())
            elif isinstance(event, NotAdmitted | KeyUnavailable | InternalError | BoardLost):
                emit(kind="problem", user=user, event=event.name, detail=str(event))
            elif isinstance(event, ChannelClosed):  # the client reconnects by itself
                emit(kind="reconnect", user=user, detail=str(event))

    watchers = [asyncio.create_task(watch(u, mc)) for u, mc in meetings.items()]
    emit(kind="ready")
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cpu0 = time.process_time()
    while line := (await reader.readline()).decode().split():
        if line[0] == "go":
            for c in clients.values():
                c.requests = 0  # type: ignore[attr-defined]
            cpu0 = time.process_time()
            await asyncio.gather(*(mc.join() for mc in meetings.values()))
        elif line[0] == "leave":
            await meetings[line[1]].leave()
        elif line[0] == "stats":
            requests = sum(c.requests for c in clients.values())  # type: ignore[attr-defined]
            emit(kind="stats", requests=requests, cpu=time.process_time() - cpu0)
        elif line[0] == "dump":  # a stalled run: who is behind epoch line[1], and why
            for u, mc in meetings.items():
                if mc.session.epoch is None or mc.session.epoch < int(line[1]):
                    emit(kind="lag", user=u, **session_state(mc))
            emit(kind="dumped")
        elif line[0] == "quit":
            break
    for w in watchers:
        w.cancel()
    for u, mc in meetings.items():
        await mc.close()
        await clients[u].aclose()


# --- the host, and one measured meeting ------------------------------------------------------


@dataclass
class Run:
    n: int
    keys: dict[str, dict[int, float]] = field(default_factory=dict)  # user -> epoch -> time
    problems: list[dict[str, Any]] = field(default_factory=list)  # what a client gave up on
    reconnects: int = 0  # channels closed under the clients (each reconnected by itself)


class Workers:
    """The participants' processes, each fed commands on stdin and read on stdout."""

    def __init__(self, procs: list[asyncio.subprocess.Process], run: Run | None) -> None:
        self.procs, self.run = procs, run
        self.waiting: dict[str, list[dict[str, Any]]] = {}
        self.readers = [asyncio.create_task(self._read(p)) for p in procs]
        self.arrived = asyncio.Event()

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            msg = json.loads(raw)
            if msg["kind"] == "key" and self.run is not None:
                self.run.keys.setdefault(msg["user"], {}).setdefault(msg["epoch"], msg["t"])
            elif msg["kind"] == "problem" and self.run is not None:
                self.run.problems.append(msg)
            elif msg["kind"] == "reconnect" and self.run is not None:
                self.run.reconnects += 1
            else:
                self.waiting.setdefault(msg["kind"], []).append(msg)
            self.arrived.set()

    async def collect(self, kind: str, timeout: float = 600.0) -> list[dict[str, Any]]:
        """One message of ``kind`` from every process (an error if one of them died)."""
        deadline = time.monotonic() + timeout
        while len(self.waiting.get(kind, [])) < len(self.procs):
            failed = [p.returncode for p in self.procs if p.returncode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a participants' process failed (exit {failed[0]})")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 1.0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {kind!r}")
        return self.waiting.pop(kind)

    async def send(self, line: str, only: int | None = None) -> None:
        for i, p in enumerate(self.procs):
            if only is None or i == only:
                assert p.stdin is not None
                p.stdin.write(line.encode() + b"\n")
                await p.stdin.drain()

    async def close(self) -> None:
        await self.send("quit")
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 60)
            except TimeoutError:
                p.kill()
        for r in self.readers:
            r.cancel()


async def spawn(spec: dict[str, Any], users: list[str], procs: int) -> list[Any]:
    out = []
    for i in range(procs):
        part = users[i::procs]
        if not part:
            continue
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", json.dumps({**spec, "users": part}),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out.append(proc)
    return out


async def provision(spec: dict[str, Any], users: list[str], procs: int) -> None:
    workers = Workers(await spawn({**spec, "mode": "provision"}, users, procs), None)
    await workers.collect("provisioned")
    for p in workers.procs:
        await p.wait()


def _until(cond: Callable[[], bool], timeout: float) -> Any:
    async def wait() -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError
            await asyncio.sleep(0.05)

    return wait()


async def report_stall(top: Topology, workers: Workers, host: MeetingClient) -> None:
    """Say who never got the host's key, and in what state, and the host's state."""
    log(f"stalled; the host: {json.dumps(session_state(host), default=str)}")
    await workers.send(f"dump {host.session.epoch}")
    with contextlib.suppress(TimeoutError, RuntimeError):
        await workers.collect("dumped", timeout=30)
    lags = workers.waiting.pop("lag", [])
    for path in top.logs:
        warned = [line for line in path.read_text(errors="replace").splitlines()
                  if "warning" in line.lower() or "error" in line.lower()]  # fmt: skip
        log(f"{path.name}: {len(warned)} warnings; the last of them:")
        for line in warned[-8:]:
            log("   ", line[:400])
    log(f"{len(lags)} behind the host's epoch; the first of them:")
    for lag in lags[:12]:
        log(json.dumps(lag, default=str))


async def measure(
    top: Topology, spec: dict[str, Any], n: int, procs: int, tree: bool = True
) -> dict[str, Any]:
    users = [f"u{i:05d}" for i in range(n)]
    meeting = f"scale-{n}-{uuid.uuid4().hex[:8]}"
    run = Run(n)
    config = MeetingConfig(meeting, host=HOST, invitees=tuple(users))
    host_sdk = make_client(spec, HOST)
    await host_sdk.initialize()
    timing = TIMING if tree else dataclasses.replace(TIMING, tree_threshold=None)
    host = MeetingClient(host_sdk, top.confs[0], config, timing=timing)
    host_keys: dict[int, float] = {}

    async def watch_host() -> None:
        async for event in host.events():
            if isinstance(event, KeyInstalled | Rekeyed):
                host_keys.setdefault(event.epoch, time.time())

    watcher = asyncio.create_task(watch_host())
    started = time.monotonic()
    await host.start()
    await _until(lambda: bool(host_keys), 120)
    log(f"N={n}: meeting started ({time.monotonic() - started:.1f} s, {n} invitees added)")
    wspec = {**spec, "mode": "join", "meeting": meeting, "invitees": users}
    workers = Workers(await spawn(wspec, users, procs), run)
    try:
        await workers.collect("ready")
        host_sdk.requests = 0  # type: ignore[attr-defined]
        log(f"N={n}: {len(workers.procs)} processes ready; all join now")
        t0 = time.time()
        await workers.send("go")

        def converged() -> bool:
            epoch = host.session.epoch
            if epoch is None or len(run.keys) < n:
                return False
            return all(max(k) >= epoch for k in run.keys.values())

        last_report = last_change = time.monotonic()
        seen: tuple[int, int, int | None] = (0, 0, None)

        def progress() -> bool:
            nonlocal last_report, last_change, seen
            now = time.monotonic()
            if now - last_report > 5:
                last_report = now
                log(f"N={n}: {len(run.keys)}/{n} hold a key, host at epoch {host.session.epoch}")
            state = (len(run.keys), sum(map(len, run.keys.values())), host.session.epoch)
            if state != seen:
                seen, last_change = state, now
            elif now - last_change > STALL_SECONDS:
                raise TimeoutError(f"no key installed anywhere for {STALL_SECONDS:.0f} s")
            return converged()

        try:
            await _until(progress, 600)
        except TimeoutError:
            await report_stall(top, workers, host)
            raise
        epoch = host.session.epoch
        assert epoch is not None
        burst = max(min(t for e, t in k.items() if e >= epoch) for k in run.keys.values()) - t0
        await workers.send("stats")
        stats = await workers.collect("stats")
        requests = sum(s["requests"] for s in stats) + host_sdk.requests  # type: ignore[attr-defined]
        cpu = sum(s["cpu"] for s in stats)
        log(
            f"N={n}: all hold epoch {epoch} after {burst:.1f} s;"
            f" {requests / n:.1f} requests per join"
        )
        # A leave: the host's fresh key must reach everyone else through the key service.
        leaver = users[0]
        await workers.send(f"leave {leaver}", only=0)
        await _until(lambda: (host.session.epoch or 0) > epoch, 60)
        fresh = host.session.epoch
        assert fresh is not None
        posted = host_keys[fresh]
        others = [u for u in users if u != leaver]
        await _until(lambda: all(fresh in run.keys.get(u, {}) for u in others), 120)
        delays = sorted(run.keys[u][fresh] - posted for u in others)
        q = (
            statistics.quantiles(delays, n=100, method="inclusive")
            if len(delays) > 1
            else delays * 99
        )
        log(f"N={n}: the fresh key reached all {len(others)} in {delays[-1]:.2f} s")
        for problem in run.problems[:10]:
            log(f"N={n}: problem: {problem['user']} {problem['event']}: {problem['detail']}")
        return {
            "n": n,
            "burst_s": burst,
            "requests_per_join": requests / n,
            "rekey_p50_s": q[49],
            "rekey_p99_s": q[98],
            "rekey_last_s": delays[-1],
            "participants_cpu_s": cpu,
            "problems": len(run.problems),
            "reconnects": run.reconnects,
            "elapsed_s": time.monotonic() - started,
        }
    finally:
        watcher.cancel()
        await workers.close()
        await host.close()
        await host_sdk.aclose()


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="sealroom-scale-") as d:
        tmp = Path(d)
        log(
            f"starting the services ({args.topology}"
            + (f", {args.bus})" if args.topology == "split" else ")")
        )
        top = Topology(tmp, args.topology, args.bus)
        try:
            spec = {"idp": top.idp, "ks": top.ks, "confs": top.confs, "keystores": str(tmp / "ks")}
            everyone = [HOST, *(f"u{i:05d}" for i in range(max(sizes)))]
            t = time.monotonic()
            await provision(spec, everyone, args.procs)
            log(f"{len(everyone)} users created in {time.monotonic() - t:.1f} s")
            results = []
            for n in sizes:
                results.append(await measure(top, spec, n, args.procs, args.tree == "auto"))
            return results
        finally:
            for client in _IDP.values():  # this process's IdP clients (the host's)
                await client.aclose()
            _IDP.clear()
            top.stop()


def picture(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in results]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.6))
    a.plot(ns, [r["burst_s"] for r in results], "o-")
    a.axhline(60, ls="--", c="grey", lw=0.8)
    a.set(title="burst: all hold the key (s)", xlabel="participants", xscale="log")
    b.plot(ns, [r["rekey_p50_s"] for r in results], "o-", label="p50")
    b.plot(ns, [r["rekey_p99_s"] for r in results], "o-", label="p99")
    b.plot(ns, [r["rekey_last_s"] for r in results], "o-", label="last")
    b.axhline(10, ls="--", c="grey", lw=0.8)
    b.set(title="rekey after a leave (s)", xlabel="participants", xscale="log")
    b.legend()
    c.plot(ns, [r["requests_per_join"] for r in results], "o-")
    c.set(title="key-service requests per join", xlabel="participants", xscale="log")
    for ax in (a, b, c):
        ax.set_ylim(bottom=0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"picture: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,300,1000")
    parser.add_argument("--procs", type=int, default=4, help="participants' processes")
    parser.add_argument("--topology", choices=["single", "split"], default="single")
    parser.add_argument("--bus", choices=["redis", "nats"], default="nats")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument(
        "--tree",
        choices=["auto", "off"],
        default="auto",
        help="the host's key tree: from the session's threshold (auto), or never (off)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The SDK's warnings (a failed board message, a failed timer) on stderr, with the process.
    logging.basicConfig(
        level=logging.WARNING,
        format=f"[%(asctime)s {'worker' if args.worker else 'host'}] %(name)s: %(message)s",
    )
    if args.worker:
        asyncio.run(worker(json.loads(args.worker)))
        return 0
    results = asyncio.run(bench(args))
    where = (
        "one process each, SQLite"
        if args.topology == "single"
        else (f"PostgreSQL, 2 key-service workers, 2 conference processes on {args.bus}")
    ) + ("; key tree from 32 present" if args.tree == "auto" else "; no key tree")
    print(f"\nmeeting scale on 127.0.0.1 ({where}); {args.procs} participants' processes")
    print(f"{'N':>6}{'burst s':>9}{'req/join':>10}{'rekey p50':>11}{'p99':>7}{'last':>7}"
          f"{'load CPU s':>12}{'problems':>10}{'reconnects':>12}")  # fmt: skip
    for r in results:
        print(
            f"{r['n']:>6}{r['burst_s']:>9.1f}{r['requests_per_join']:>10.1f}"
            f"{r['rekey_p50_s']:>11.2f}{r['rekey_p99_s']:>7.2f}{r['rekey_last_s']:>7.2f}"
            f"{r['participants_cpu_s']:>12.1f}{r['problems']:>10}{r['reconnects']:>12}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"meeting_scale_{args.topology}" + ("" if args.tree == "auto" else "_notree")
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2))
    picture(results, args.out / f"{name}.png", f"Sealroom meetings at scale ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
