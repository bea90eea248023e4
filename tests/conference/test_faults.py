"""Faults of the conferencing service, measured by stopping things: a client that stops
reading, a Redis restart with and without persistence, a NATS outage. Each broker here is
the test's own (tests/brokers_own.py), on another port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import websockets

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.bus import Bus, InProcessBus, NatsBus, RedisBus
from sealroom.crypto.signing import SigningKey
from sealroom.demo.services import free_port
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.media.keys import Sender
from sealroom.meeting.messages import BoardMessage
from tests.brokers_own import OwnBroker

pytestmark = pytest.mark.timeout(120)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    """A real uvicorn in this loop; yields its port and the server (its connections)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield port, server
    finally:
        server.should_exit = True
        await task


def _app(idp: DevIdp, bus: Bus) -> Any:
    return create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks), bus
    )


async def _connect(idp: DevIdp, port: int, user: str, meeting: str = "m1", **kw: Any) -> Any:
    return await websockets.connect(
        f"ws://127.0.0.1:{port}/v1/meetings/{meeting}/channel",
        additional_headers={"authorization": "Bearer " + idp.issue(user, AUDIENCE)},
        max_size=1 << 22,
        **kw,
    )


def _post(user: str, seq: int, meeting: str = "m1") -> str:
    message = BoardMessage.create(
        SigningKey.generate(),
        meeting=meeting,
        kind="announce",
        user=user,
        device=f"{user}-d",
        seq=seq,
        body={},
    )
    return json.dumps({"type": "post", "message": json.loads(message.to_json())})


async def _next_board(ws: Any, timeout: float = 10) -> dict[str, Any]:
    """The next text message (skipping media frames)."""
    async with asyncio.timeout(timeout):
        while True:
            data = await ws.recv()
            if isinstance(data, str):
                reply: dict[str, Any] = json.loads(data)
                return reply


# --- a client that stops reading -----------------------------------------------------------


async def _stuck_reader(idp: DevIdp) -> tuple[int, float]:
    bus = InProcessBus()
    async with serving(_app(idp, bus)) as (port, server):
        bob = await _connect(idp, port, "bob", max_queue=1)  # then it stops reading
        alice = await _connect(idp, port, "alice")
        big = Sender(os.urandom(32), 1, 0).encrypt(b"", b"x" * 200_000)
        deadline = time.monotonic() + 30
        while "m1" in bus._media_subs and len(bus._media_subs["m1"]) > 1:
            if time.monotonic() > deadline:
                raise AssertionError("the stuck reader was never dropped")
            await alice.send(big)
            await asyncio.sleep(0.01)
        dropped_at = time.monotonic()
        # The server must let go of bob's socket (and its unsent frames) at once, not wait
        # for a peer that does not read.
        while len(server.server_state.connections) > 1 and time.monotonic() - dropped_at < 5:
            await asyncio.sleep(0.05)
        left = len(server.server_state.connections)
        await alice.close()
        bob.transport.abort()
        return left, time.monotonic() - dropped_at


def test_a_client_dropped_by_the_watchdog_has_its_connection_aborted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealroom.conference.app.SEND_TIMEOUT", 1.0)
    left, after = asyncio.run(_stuck_reader(DevIdp(tmp_path / "idp")))
    assert left == 1, f"bob's connection was still held {after:.1f} s after the drop"


# --- Redis restarts ------------------------------------------------------------------------


async def _redis_restart(idp: DevIdp, broker: OwnBroker) -> None:
    bus = RedisBus(broker.url, prefix="t")
    try:
        async with serving(_app(idp, bus)) as (port, _server):
            alice = await _connect(idp, port, "alice")
            await alice.send(_post("alice", 1))
            assert (await _next_board(alice))["message"]["user"] == "alice"

            broker.stop()  # a restart: Redis writes its append-only file and comes back
            broker.start()

            # A client joining after the restart posts at once: the pooled connections that
            # died with the old server are retried on fresh ones, not a 1011.
            bob = await _connect(idp, port, "bob")
            assert (await _next_board(bob))["message"]["user"] == "alice"  # history kept
            await bob.send(_post("bob", 1))
            assert (await _next_board(bob))["message"]["user"] == "bob"
            # alice, connected through the restart, still follows the board and the media.
            assert (await _next_board(alice))["message"]["user"] == "bob"
            frame = Sender(os.urandom(32), 1, 0).encrypt(b"", b"after the restart")
            async with asyncio.timeout(15):
                while True:
                    await bob.send(frame)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.3):
                            if await alice.recv() == frame:
                                break
            await alice.close()
            await bob.close()
    finally:
        await bus.close()


def test_a_redis_restart_is_ridden_out(tmp_path: Path) -> None:
    with OwnBroker("redis", tmp_path / "redis") as broker:
        asyncio.run(_redis_restart(DevIdp(tmp_path / "idp"), broker))


async def _redis_loses_the_board(idp: DevIdp, broker: OwnBroker) -> None:
    bus = RedisBus(broker.url, prefix="t")
    try:
        async with serving(_app(idp, bus)) as (port, _server):
            alice = await _connect(idp, port, "alice")
            await alice.send(_post("alice", 1))
            assert (await _next_board(alice))["message"]["user"] == "alice"

            broker.stop(hard=True)  # no persistence: everything it held is gone
            broker.start()

            # alice hears that the board is gone (not silence), and the channel closes.
            reply = await _next_board(alice, timeout=20)
            assert reply["type"] == "error"
            assert reply["code"] == "board_lost"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(alice.recv(), 10)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4410, "board_lost")
            # Someone opening the meeting here afterwards is told too.
            bob = await _connect(idp, port, "bob")
            assert (await _next_board(bob))["code"] == "board_lost"
            await bob.close()
    finally:
        await bus.close()


def test_a_board_lost_in_a_redis_restart_is_reported(tmp_path: Path) -> None:
    with OwnBroker("redis", tmp_path / "redis", persistent=False) as broker:
        asyncio.run(_redis_loses_the_board(DevIdp(tmp_path / "idp"), broker))


# --- NATS outages --------------------------------------------------------------------------


async def _nats_outage(idp: DevIdp, broker: OwnBroker) -> tuple[int, int, list[Any]]:
    bus = NatsBus(broker.url, prefix="t")
    try:
        async with serving(_app(idp, bus)) as (port, _server):
            alice = await _connect(idp, port, "alice")
            bob = await _connect(idp, port, "bob")
            await alice.send(_post("alice", 1))
            assert (await _next_board(alice))["type"] == "board"
            assert (await _next_board(bob))["type"] == "board"
            sender = Sender(os.urandom(32), 1, 0)
            received: list[bytes] = []

            async def read_bob() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for data in bob:
                        if isinstance(data, bytes):
                            received.append(data)

            reader = asyncio.create_task(read_bob())
            before = sender.encrypt(b"", b"before")
            async with asyncio.timeout(10):
                while before not in received:
                    await alice.send(before)
                    await asyncio.sleep(0.1)

            broker.stop(hard=True)
            async with asyncio.timeout(10):
                while bus._nc.is_connected:
                    await asyncio.sleep(0.05)
            during: list[bytes] = []
            for i in range(40):  # 4 s of media, small and large frames, while NATS is away
                payload = (b"s%d-" % i) * 10 if i % 2 else (b"L%d-" % i) * 40_000
                frame = sender.encrypt(b"", payload)
                during.append(frame)
                await alice.send(frame)
                await asyncio.sleep(0.1)
            broker.start()
            async with asyncio.timeout(20):
                while not bus._nc.is_connected:
                    await asyncio.sleep(0.05)
            after = sender.encrypt(b"", b"after")
            async with asyncio.timeout(20):
                while after not in received:
                    await alice.send(after)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything replayed late would arrive by now
            replayed = sum(f in received for f in during)
            open_sockets = sum(ws.close_code is None for ws in (alice, bob))
            states = [ws.close_code for ws in (alice, bob)]
            reader.cancel()
            await alice.close()
            await bob.close()
            return replayed, open_sockets, states
    finally:
        with contextlib.suppress(Exception):
            await bus.delete_stream()
        with contextlib.suppress(Exception):
            await bus.close()


def test_media_during_a_nats_outage_is_dropped_not_replayed(tmp_path: Path) -> None:
    with OwnBroker("nats", tmp_path / "nats") as broker:
        replayed, open_sockets, states = asyncio.run(_nats_outage(DevIdp(tmp_path / "idp"), broker))
    assert replayed == 0  # nothing sent during the outage arrives after it, small or large
    assert open_sockets == 2, states  # and nobody was disconnected for it
