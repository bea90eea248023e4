"""The conferencing service: channel, history, relay, refusal of bad clients, and the Redis
and NATS backends (two service instances serving one meeting)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.board import BoardPost
from sealroom.conference.bus import Bus, InProcessBus, NatsBus, RedisBus
from sealroom.crypto.signing import SigningKey
from sealroom.demo.services import free_port
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.media.keys import Sender
from sealroom.meeting.messages import BoardMessage
from tests.live_server import live_server

URL = "/v1/meetings/m1/channel"
# A broken relay shows as a blocked receive: fail in seconds, not after the suite's 300 s.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def idp(tmp_path: Path) -> DevIdp:
    return DevIdp(tmp_path / "idp")


def _app(idp: DevIdp, bus: Bus | None = None) -> TestClient:
    """A client to use as a context manager: then every connection shares one event loop,
    as under a real server (an un-entered TestClient gives each its own loop and thread)."""
    app = create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks), bus
    )
    return TestClient(app)


def _auth(idp: DevIdp, user: str) -> dict[str, str]:
    return {"authorization": "Bearer " + idp.issue(user, AUDIENCE)}


def _message(user: str, seq: int = 1, meeting: str = "m1") -> BoardMessage:
    return BoardMessage.create(
        SigningKey.generate(),
        meeting=meeting,
        kind="announce",
        user=user,
        device=f"{user}-d",
        seq=seq,
        body={},
    )


def _post(user: str, seq: int = 1, meeting: str = "m1") -> str:
    return json.dumps(
        {"type": "post", "message": json.loads(_message(user, seq, meeting).to_json())}
    )


def _frame() -> bytes:
    return Sender(os.urandom(32), 1, 0).encrypt(b"", b"pixels")


def test_a_token_is_required(idp: DevIdp) -> None:
    with _app(idp) as client:
        with pytest.raises(WebSocketDisconnect) as exc, client.websocket_connect(URL):
            pass
        assert exc.value.code == 4401
        other = {"authorization": "Bearer " + idp.issue("alice", "sealroom-keyservice")}
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(URL, headers=other):
            pass


def test_board_history_and_live_messages(idp: DevIdp) -> None:
    with _app(idp) as client, client.websocket_connect(URL, headers=_auth(idp, "alice")) as a:
        a.send_text(_post("alice", 1))
        assert a.receive_json()["message"]["user"] == "alice"
        with client.websocket_connect(URL, headers=_auth(idp, "bob")) as b:
            assert b.receive_json()["message"]["user"] == "alice"  # history
            b.send_text(_post("bob", 1))
            assert b.receive_json()["message"]["user"] == "bob"
            assert a.receive_json()["message"]["user"] == "bob"


def test_media_is_relayed_to_the_others_only(idp: DevIdp) -> None:
    with (
        _app(idp) as client,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
        client.websocket_connect(URL, headers=_auth(idp, "bob")) as b,
    ):
        frame = _frame()
        a.send_bytes(frame)
        assert b.receive_bytes() == frame
        a.send_text(_post("alice", 2))  # the next thing alice sees is the board, not her frame
        assert a.receive_json()["type"] == "board"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{not json", "malformed_message"),
        (json.dumps({"type": "post", "message": {"v": 2}}), "malformed_message"),
        ("[" * 10000, "malformed_message"),
        (_post("mallory"), "wrong_user"),
        (_post("alice").replace('"kind": "announce"', '"kind": ["announce"]'), "malformed_message"),
        (_post("alice", meeting="m2"), "wrong_meeting"),
        (b"\xff\x01", "malformed_frame"),
        (b"\x01" + b"x" * (300 * 1024), "frame_too_large"),
    ],
)
def test_bad_clients_are_refused_and_the_meeting_goes_on(
    idp: DevIdp, payload: str | bytes, code: str
) -> None:
    with (
        _app(idp) as client,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
        client.websocket_connect(URL, headers=_auth(idp, "bob")) as b,
    ):
        if isinstance(payload, bytes):
            a.send_bytes(payload)
        else:
            a.send_text(payload)
        reply = a.receive_json()
        assert reply == {"type": "error", "code": code, "detail": reply["detail"]}
        a.send_text(_post("alice", 5))  # still connected, still relayed
        assert b.receive_json()["message"]["seq"] == 5


def test_the_in_process_bus_refuses_a_second_event_loop() -> None:
    bus = InProcessBus()
    post = BoardPost.of(_message("alice"))
    asyncio.run(bus.post(post))  # binds the bus to that loop; it is closed afterwards
    bound = asyncio.new_event_loop()
    try:
        bound.run_until_complete(bus.post(post))  # a closed loop's successor may bind
        with pytest.raises(RuntimeError, match="one event loop"):
            asyncio.run(bus.send_media("m1", "c", b"x"))
    finally:
        bound.close()


def test_a_connection_on_a_second_event_loop_is_closed_not_left_hanging(idp: DevIdp) -> None:
    client = _app(idp)  # not entered: each connection gets its own loop and thread
    with client.websocket_connect(URL, headers=_auth(idp, "alice")) as a:
        a.send_text(_post("alice", 1))
        assert a.receive_json()["message"]["user"] == "alice"
        with (
            pytest.raises(WebSocketDisconnect) as exc,
            client.websocket_connect(URL, headers=_auth(idp, "bob")) as b,
        ):
            b.receive_json()
        assert exc.value.code == 1011


class _BrokenBoardBus(InProcessBus):
    async def board(self, meeting: str) -> AsyncIterator[str]:
        raise ConnectionError("broker gone")
        yield ""  # pragma: no cover - makes this an async generator


class _SlowSubscribeBus(InProcessBus):
    """A broker that takes a while to confirm a media subscription."""

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        await asyncio.sleep(0.5)
        async for item in super().media(meeting, ready):
            yield item


def test_once_a_client_sees_the_board_its_media_subscription_is_live(idp: DevIdp) -> None:
    with (
        _app(idp, _SlowSubscribeBus()) as client,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.send_text(_post("alice", 1))
        assert a.receive_json()["message"]["seq"] == 1
        with client.websocket_connect(URL, headers=_auth(idp, "bob")) as b:
            assert b.receive_json()["message"]["user"] == "alice"
            frame = _frame()
            a.send_bytes(frame)  # at once: no pause for bob's subscription
            assert b.receive_bytes() == frame


class _PublishFailsBus(InProcessBus):
    async def send_media(self, meeting: str, sender: str, frame: bytes) -> None:
        raise ConnectionError("broker gone")


def test_a_failed_publish_closes_the_socket(idp: DevIdp) -> None:
    with (
        _app(idp, _PublishFailsBus()) as client,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.send_bytes(_frame())
        with pytest.raises(WebSocketDisconnect) as exc:
            a.receive_json()
    assert exc.value.code == 1011


class _NeverReadyBus(InProcessBus):
    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        async for item in super().media(meeting, None):  # never confirms
            yield item


def test_a_subscription_the_broker_never_confirms_closes_the_socket(
    idp: DevIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealroom.conference.app.SUBSCRIBE_TIMEOUT", 0.2)
    with (
        _app(idp, _NeverReadyBus()) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.receive_json()
    assert exc.value.code == 1011
    assert exc.value.reason == "relay_unavailable"


class _MediaEndsBus(InProcessBus):
    """A broker whose media stream just stops, without an error."""

    async def media(
        self, meeting: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        if ready is not None:
            ready.set()
        await asyncio.sleep(0.1)
        return
        yield "", b""  # pragma: no cover - makes this an async generator


def test_a_relay_stream_that_ends_closes_the_socket(idp: DevIdp) -> None:
    with (
        _app(idp, _MediaEndsBus()) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.receive_json()
    assert (exc.value.code, exc.value.reason) == (1011, "relay_failed")


def test_a_broker_failure_closes_the_socket(idp: DevIdp) -> None:
    with (
        _app(idp, _BrokenBoardBus()) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.receive_json()
    assert exc.value.code == 1011


# --- two service instances over a shared broker ---


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _bus_pair(kind: str, prefix: str) -> tuple[Bus, Bus]:
    if kind == "redis":
        return RedisBus(prefix=prefix), RedisBus(prefix=prefix)
    return NatsBus(prefix=prefix), NatsBus(prefix=prefix)


@pytest.fixture(params=["redis", "nats"])
def bus_kind(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    port = 6379 if request.param == "redis" else 4222
    if not _reachable(port):
        pytest.skip(f"{request.param} not reachable on 127.0.0.1:{port}")
    prefix = f"srtest{uuid.uuid4().hex[:10]}"
    yield request.param, prefix
    if request.param == "redis":
        import redis

        r = redis.Redis()
        for key in r.scan_iter(f"{prefix}:*"):
            r.delete(key)
        r.close()
    else:

        async def drop() -> None:
            bus = NatsBus(prefix=prefix)
            await bus.delete_stream()
            await bus.close()

        asyncio.run(drop())


def test_two_service_instances_serve_one_meeting(idp: DevIdp, bus_kind: tuple[str, str]) -> None:
    kind, prefix = bus_kind
    bus1, bus2 = _bus_pair(kind, prefix)
    with (
        _app(idp, bus1) as one,
        _app(idp, bus2) as two,
        one.websocket_connect(URL, headers=_auth(idp, "alice")) as a,
    ):
        a.send_text(_post("alice", 1))
        assert a.receive_json()["message"]["seq"] == 1
        with two.websocket_connect(URL, headers=_auth(idp, "bob")) as b:
            # History across servers; once bob sees it, his media subscription is live.
            assert b.receive_json()["message"]["user"] == "alice"
            frame = _frame()
            a.send_bytes(frame)
            assert b.receive_bytes() == frame
            b.send_text(_post("bob", 1))
            assert a.receive_json()["message"]["user"] == "bob"


async def _stuck_reader_is_dropped(idp: DevIdp) -> None:
    bus = InProcessBus()
    app = create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks), bus
    )
    ended: list[float] = []

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        ended.append(time.monotonic())

    async with live_server(counted) as port:
        url = f"ws://127.0.0.1:{port}{URL}"
        # bob never reads; alice floods the meeting with large frames.
        bob = await websockets.connect(
            url, additional_headers=_auth(idp, "bob"), max_queue=1, max_size=1 << 20
        )
        alice = await websockets.connect(url, additional_headers=_auth(idp, "alice"))
        big = Sender(os.urandom(32), 1, 0).encrypt(b"", b"x" * 200_000)
        deadline = time.monotonic() + 20
        while not ended and time.monotonic() < deadline:
            await alice.send(big)
            await asyncio.sleep(0.01)
        assert len(ended) == 1  # bob's connection ended; alice's goes on
        assert len(bus._media_subs["m1"]) == 1  # and bob's subscription is released
        await alice.close()
        bob.transport.abort()


def test_a_client_that_stops_reading_is_dropped(
    idp: DevIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealroom.conference.app.SEND_TIMEOUT", 1.0)
    asyncio.run(_stuck_reader_is_dropped(idp))


async def _subscribe_during_outage(port: int, server: subprocess.Popen[bytes]) -> None:
    bus = NatsBus(f"nats://127.0.0.1:{port}", prefix=f"srtest{uuid.uuid4().hex[:10]}")
    try:
        await bus.post(BoardPost.of(_message("alice")))  # connected; the stream exists
        live = asyncio.Event()
        first = bus.media("m1", live)
        pending = asyncio.ensure_future(anext(first))
        await asyncio.wait_for(live.wait(), 10)  # while connected, a subscription confirms
        pending.cancel()

        server.kill()  # the broker goes away; the client starts reconnecting
        server.wait()
        deadline = time.monotonic() + 10
        while bus._nc.is_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not bus._nc.is_connected

        during = asyncio.Event()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(anext(bus.media("m1", during)), 10)
        assert not during.is_set()  # never reported live while the broker is away
    finally:
        if bus._nc is not None:
            with contextlib.suppress(ConnectionError):  # its broker is gone
                await bus._nc.close()


NATS_SERVER = shutil.which("nats-server")


@pytest.mark.skipif(NATS_SERVER is None, reason="needs the nats-server binary")
def test_no_media_subscription_counts_as_live_while_nats_is_away(tmp_path: Path) -> None:
    assert NATS_SERVER is not None
    port = free_port()
    server = subprocess.Popen(  # a broker of our own, to take away
        [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _reachable(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        asyncio.run(_subscribe_during_outage(port, server))
    finally:
        server.kill()
        server.wait()
