"""Churn soak (issue 14): do the services' memory and file descriptors stay flat?

It starts the development IdP, the key service (SQLite) and the conferencing service
(in-process bus, boards of finished meetings dropped after ``--board-idle`` seconds) as
processes on 127.0.0.1, then for ``--minutes`` plays meeting after meeting: a host starts,
two to four others join, media flows, one leaves, the host ends, and every participant's
device rotates its key pair (register new, revoke old), as after every real meeting. Every
five seconds it samples each service's resident memory (VmRSS) and open file descriptors
from /proc, and the key service's nonce and device rows. It prints a table per minute and
the change from the end of the warm-up to the end, and draws RSS and fds over time.

    .venv/bin/python bench/soak.py [--minutes 10] [--out bench/out]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from sealroom.api.encoding import b64d
from sealroom.demo.services import free_port, wait_until_up
from sealroom.idp import PROVIDER_AUDIENCE
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk import BasicSplitTrust, Client, Joined, KeyInstalled, MeetingEvent
from sealroom.sdk.meeting import MeetingClient

TIMING = Timing(join_retry_delays=(0.2, 0.5, 1.0, 1.0), leave_debounce=0.3, ratchet_interval=5.0)
USERS = [f"user{i}" for i in range(40)]  # each opens ~20 meetings in 10 minutes (quota: 32)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Stack:
    """The three services as processes."""

    def __init__(self, tmp: Path, board_idle: float) -> None:
        self.tmp = tmp
        ports = {n: free_port() for n in ("idp", "ks", "conf")}
        self.idp, self.ks, self.conf = (
            f"http://127.0.0.1:{ports[n]}" for n in ("idp", "ks", "conf")
        )
        jwks = f"{self.idp}/.well-known/jwks.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALROOM_")}
        env.update({"SEALROOM_JWKS_URL": jwks, "SEALROOM_LOG_LEVEL": "warning"})
        cmd = [sys.executable, "-m", "sealroom"]
        self.db = tmp / "ks.db"
        argv = {
            "idp": [*cmd, "idp", "--data-dir", str(tmp / "idp"), "--port", str(ports["idp"])],
            "ks": [
                *cmd,
                "keyservice",
                "--database-url",
                f"sqlite:///{self.db}",
                "--secrets-file",
                str(tmp / "secrets.json"),
                "--port",
                str(ports["ks"]),
                # Every participant is on this one address: let the per-user limits speak.
                "--address-rate-limit",
                "10000",
            ],
            "conf": [
                *cmd,
                "conference",
                "--port",
                str(ports["conf"]),
                "--board-idle-seconds",
                str(board_idle),
            ],
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        log = (tmp / "services.log").open("wb")
        try:
            self.procs["idp"] = subprocess.Popen(argv["idp"], env=env, stdout=log, stderr=log)
            wait_until_up(jwks, self.procs["idp"])
            for name in ("ks", "conf"):
                self.procs[name] = subprocess.Popen(argv[name], env=env, stdout=log, stderr=log)
            wait_until_up(f"{self.ks}/healthz", self.procs["ks"])
            wait_until_up(f"{self.conf}/healthz", self.procs["conf"])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def person(stack: Stack, user: str) -> tuple[Client, Any]:
    def token(audience: str) -> str:
        r = httpx.post(f"{stack.idp}/v1/token", json={"user_id": user, "audience": audience})
        return str(r.json()["token"])

    def half() -> bytes:
        r = httpx.post(
            f"{stack.idp}/v1/escrow-half",
            headers={"authorization": "Bearer " + token(PROVIDER_AUDIENCE)},
        )
        return b64d(r.json()["half"])

    sdk = Client(
        stack.ks,
        jwt=token,
        secret=BasicSplitTrust(half),
        keystore=stack.tmp / user / "device.json",
    )
    return sdk, token


async def wait_event(mc: MeetingClient, kind: type[MeetingEvent], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        event = await mc.next_event(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(event, kind):
            return


async def one_meeting(
    stack: Stack, people: dict[str, tuple[Client, Any]], n: int, rng: random.Random
) -> int:
    """One meeting; returns the frames that reached someone."""
    names = rng.sample(USERS, rng.randint(3, 5))
    host, others = names[0], names[1:]
    config = MeetingConfig(f"soak{n}-{rng.randrange(1 << 30):x}", host=host, invitees=tuple(others))
    clients: dict[str, MeetingClient] = {}
    try:
        for name in names:
            sdk, token = people[name]
            clients[name] = MeetingClient(
                sdk, f"{stack.conf}", config, token=token, timing=TIMING, switch_delay=0.1
            )
        await clients[host].start()
        await wait_event(clients[host], KeyInstalled)
        for name in others:
            await clients[name].join()
        for name in others:
            await wait_event(clients[name], Joined)
        frames = 0
        for _ in range(20):
            for name in names:
                if await clients[name].publish(os.urandom(600)):
                    frames += 1
            await asyncio.sleep(0.02)
        leaver = others[-1]
        await clients[leaver].leave()
        await asyncio.sleep(0.5)
        await clients[host].end()
        # After the end every participant's device rotates its key pair.
        await asyncio.sleep(1.0)
        return frames
    finally:
        for mc in clients.values():
            await mc.close()


class Sampler(threading.Thread):
    def __init__(self, stack: Stack, every: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.every = stack, every
        self.samples: list[dict[str, Any]] = []
        self.meetings = 0
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()

    def sample(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": time.monotonic() - self.started_at, "meetings": self.meetings}
        for name in ("ks", "conf"):
            pid = self.stack.procs[name].pid
            out[f"{name}_rss_kib"] = rss_kib(pid)
            out[f"{name}_fds"] = fds(pid)
        with sqlite3.connect(f"file:{self.stack.db}?mode=ro", uri=True, timeout=30) as db:
            out["nonces"] = db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0]
            out["devices"] = db.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
            out["live_devices"] = db.execute(
                "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL"
            ).fetchone()[0]
        return out

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.samples.append(self.sample())
            self.stop_event.wait(self.every)


async def churn(stack: Stack, minutes: float, sampler: Sampler) -> tuple[int, int, int]:
    rng = random.Random(14)  # noqa: S311 - which users meet, not a secret
    people = {u: person(stack, u) for u in USERS}
    for sdk, _ in people.values():
        await sdk.initialize()
    deadline = time.monotonic() + minutes * 60
    n = failures = frames = 0
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        try:
            frames += await asyncio.wait_for(one_meeting(stack, people, n, rng), 90)
        except Exception as exc:  # a failed meeting is counted and reported, not hidden
            failures += 1
            print(f"  meeting {n} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        n += 1
        sampler.meetings = n
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            s = sampler.samples[-1]
            print(
                f"[{s['t'] / 60:4.1f} min] {n} meetings, key service "
                f"{s['ks_rss_kib'] / 1024:.0f} MiB {s['ks_fds']} fds, conference "
                f"{s['conf_rss_kib'] / 1024:.0f} MiB {s['conf_fds']} fds, {s['nonces']} nonces",
                file=sys.stderr,
                flush=True,
            )
    for sdk, _ in people.values():
        await sdk.aclose()
    return n, failures, frames


def picture(samples: list[dict[str, Any]], path: Path, warmup: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no picture; pip install 'sealroom[demo]')")
        return
    t = [s["t"] / 60 for s in samples]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, label in (("ks", "key service"), ("conf", "conferencing service")):
        ax1.plot(t, [s[f"{name}_rss_kib"] / 1024 for s in samples], label=label)
        ax2.plot(t, [s[f"{name}_fds"] for s in samples], label=label)
    for ax in (ax1, ax2):
        ax.axvline(warmup / 60, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("minutes")
        ax.set_ylim(bottom=0)
        ax.legend()
    ax1.set_title("resident memory (MiB)")
    ax2.set_title("open file descriptors")
    fig.suptitle(
        f"Sealroom churn soak: {samples[-1]['meetings']} meetings, device rotation after each"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"picture: {path}")


def _exit_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C, so the services are stopped on the way out."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    _exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes before the baseline")
    parser.add_argument("--board-idle", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sealroom-soak-") as d:
        stack = Stack(Path(d), args.board_idle)
        sampler = Sampler(stack, 5.0)
        try:
            sampler.start()
            meetings, failures, frames = asyncio.run(churn(stack, args.minutes, sampler))
            sampler.stop_event.set()
            sampler.join()
            sampler.samples.append(sampler.sample())
        finally:
            stack.stop()
    samples = sampler.samples
    print(
        f"\nchurn soak: {args.minutes:g} min, {meetings} meetings ({failures} failed), "
        f"{frames} frames sent, boards dropped {args.board_idle:g} s after their last reader"
    )
    print(
        f"{'min':>5}{'meetings':>10}{'ks MiB':>9}{'ks fds':>8}{'conf MiB':>10}{'conf fds':>10}"
        f"{'nonces':>8}{'devices':>9}{'live':>6}"
    )
    shown = -1
    for s in samples:
        minute = int(s["t"] // 60)
        if minute != shown:
            shown = minute
            print(
                f"{s['t'] / 60:>5.1f}{s['meetings']:>10}{s['ks_rss_kib'] / 1024:>9.1f}"
                f"{s['ks_fds']:>8}{s['conf_rss_kib'] / 1024:>10.1f}{s['conf_fds']:>10}"
                f"{s['nonces']:>8}{s['devices']:>9}{s['live_devices']:>6}"
            )
    last = samples[-1]
    print(
        f"{last['t'] / 60:>5.1f}{last['meetings']:>10}{last['ks_rss_kib'] / 1024:>9.1f}"
        f"{last['ks_fds']:>8}{last['conf_rss_kib'] / 1024:>10.1f}{last['conf_fds']:>10}"
        f"{last['nonces']:>8}{last['devices']:>9}{last['live_devices']:>6}   (end)"
    )
    base = next((s for s in samples if s["t"] >= args.warmup * 60), samples[0])
    for name, label in (("ks", "key service"), ("conf", "conferencing service")):
        rss0, rss1 = base[f"{name}_rss_kib"] / 1024, last[f"{name}_rss_kib"] / 1024
        span = (last["t"] - base["t"]) / 60 or 1
        print(
            f"{label}: RSS {rss0:.1f} -> {rss1:.1f} MiB after the warm-up "
            f"({rss1 - rss0:+.1f} MiB, {(rss1 - rss0) / span:+.2f} MiB/min), fds "
            f"{base[f'{name}_fds']} -> {last[f'{name}_fds']}"
        )
    print(
        f"nonce rows: {base['nonces']} -> {last['nonces']} (devices {last['devices']}, "
        f"{last['live_devices']} live)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(samples, indent=1))
    picture(samples, args.out / "soak.png", args.warmup * 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
