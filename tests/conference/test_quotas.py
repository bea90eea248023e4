"""What one client may cost the service: posts per second, meetings per user, and the
in-process bus's memory (idle expiry, a total byte cap, no per-meeting leftovers)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.board import BoardLimits, BoardPost, BoardRefusedError, BoardStore
from sealroom.conference.bus import InProcessBus, RedisBus
from sealroom.conference.quota import MeetingWindow, OpenChannels, TokenBucket
from sealroom.crypto.signing import SigningKey
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.media.keys import Sender
from sealroom.meeting.messages import BoardMessage
from tests.brokers import fresh_prefix

pytestmark = pytest.mark.timeout(30)
KEY = SigningKey.generate()


def _message(user: str, kind: str = "announce", meeting: str = "m1", seq: int = 1) -> BoardMessage:
    body = {"admins": [], "group_key": "AA"} if kind == "start" else {}
    return BoardMessage.create(
        KEY, meeting=meeting, kind=kind, user=user, device=f"{user}-d", seq=seq, body=body
    )


def _text(m: BoardMessage) -> str:
    return json.dumps({"type": "post", "message": json.loads(m.to_json())})


@pytest.fixture
def idp(tmp_path: Path) -> DevIdp:
    return DevIdp(tmp_path / "idp")


def _client(
    idp: DevIdp, settings: ConferenceSettings, bus: InProcessBus | None = None
) -> TestClient:
    """Entered as a context manager: every connection on one event loop."""
    settings = dataclasses.replace(settings, jwt_issuer=idp.issuer)
    return TestClient(create_conference_app(settings, JwksSource(document=idp.jwks), bus))


def _auth(idp: DevIdp, user: str) -> dict[str, str]:
    return {"authorization": "Bearer " + idp.issue(user, AUDIENCE)}


# --- the pieces, with plain numbers for time ---


def test_a_token_bucket_allows_a_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 of a token
    assert bucket.take(0.5) is True
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # burst caps it


def test_a_meeting_window_counts_distinct_meetings_per_user() -> None:
    window = MeetingWindow(limit=2, window=10.0)
    assert window.allow("mallory", "a", 0.0)
    assert window.allow("mallory", "b", 1.0)
    assert not window.allow("mallory", "c", 2.0)
    assert window.allow("mallory", "a", 3.0)  # one she has open already
    assert window.allow("bob", "c", 3.0)  # others are not affected
    assert window.allow("mallory", "c", 11.5)  # "b" has left the window ("a" was renewed)
    assert not window.allow("mallory", "d", 11.5)
    assert window.allow("bob", "x", 30.0)
    assert len(window) == 1  # mallory, idle for a window, is forgotten


def test_open_channels_are_counted_per_user() -> None:
    channels = OpenChannels(limit=2)
    assert channels.open("mallory")
    assert channels.open("mallory")
    assert not channels.open("mallory")
    assert channels.open("bob")
    channels.close("mallory")
    assert channels.open("mallory")
    for user in ("mallory", "mallory", "bob"):
        channels.close(user)
    assert len(channels) == 0


def test_idle_boards_expire_and_read_boards_do_not() -> None:
    now = [0.0]
    store = BoardStore(BoardLimits(idle_seconds=60.0), clock=lambda: now[0])
    store.append(BoardPost.of(_message("a", meeting="idle")))
    store.append(BoardPost.of(_message("b", meeting="read")))
    store.opened("read")
    now[0] = 61.0
    store.expire()
    assert store.history("idle") == []
    assert len(store.history("read")) == 1
    store.closed("read")  # idle from now on
    now[0] = 120.0
    store.expire()
    assert len(store.history("read")) == 1
    now[0] = 122.0
    store.expire()
    assert len(store) == 0
    assert store.size == 0


def test_the_byte_cap_evicts_idle_boards_first_then_refuses() -> None:
    one = BoardPost.of(_message("a", meeting="old"))
    store = BoardStore(BoardLimits(max_memory_bytes=3 * one.size + 10))
    store.append(one)  # idle: nobody reads it
    store.opened("busy")
    store.append(BoardPost.of(_message("b", meeting="busy")))
    store.append(BoardPost.of(_message("c", meeting="busy")))
    store.append(BoardPost.of(_message("d", meeting="new")))  # "old" makes room
    assert store.history("old") == []
    assert len(store.history("busy")) == 2
    store.opened("new")
    with pytest.raises(BoardRefusedError) as exc:
        store.append(BoardPost.of(_message("e", meeting="busy")))
    assert exc.value.code == "service_full"  # only boards in use are left
    assert store.size <= store.limits.max_memory_bytes


def test_an_in_process_bus_on_a_clock_expires_idle_boards() -> None:
    now = [0.0]
    bus = InProcessBus(BoardLimits(idle_seconds=5.0), clock=lambda: now[0])

    async def main() -> int:
        for i in range(100):
            await bus.post(BoardPost.of(_message("mallory", "start", meeting=f"m{i}")))
        now[0] = 6.0
        await bus.post(BoardPost.of(_message("mallory", "start", meeting="last")))
        return len(bus._store)

    assert asyncio.run(main()) == 1


# --- through the app ---


def test_posts_beyond_the_rate_get_a_typed_error_and_the_connection_goes_on(idp: DevIdp) -> None:
    settings = ConferenceSettings(post_rate=0.001, post_burst=3)
    with (
        _client(idp, settings) as client,
        client.websocket_connect("/v1/meetings/m1/channel", headers=_auth(idp, "alice")) as a,
        client.websocket_connect("/v1/meetings/m1/channel", headers=_auth(idp, "bob")) as b,
    ):
        for seq in range(1, 4):
            a.send_text(_text(_message("alice", seq=seq)))
            assert a.receive_json()["message"]["seq"] == seq
        a.send_text(_text(_message("alice", seq=4)))
        reply = a.receive_json()
        assert reply == {
            "type": "error",
            "code": "rate_limited",
            "detail": reply["detail"],
            "retry_after": reply["retry_after"],
        }
        assert 990 < reply["retry_after"] <= 1000  # one post per 1,000 s: the next in ~1,000
        frame = Sender(os.urandom(32), 1, 0).encrypt(b"", b"still here")
        a.send_bytes(frame)  # media is not rate limited here; the connection goes on
        for _ in range(3):
            assert b.receive_json()["type"] == "board"
        assert b.receive_bytes() == frame


def test_a_user_opening_too_many_meetings_is_told_and_closed(idp: DevIdp) -> None:
    settings = ConferenceSettings(meetings_per_user=2)
    with _client(idp, settings) as client:
        for meeting in ("a", "b", "a"):
            with client.websocket_connect(
                f"/v1/meetings/{meeting}/channel", headers=_auth(idp, "mallory")
            ) as ws:
                ws.send_text(_text(_message("mallory", meeting=meeting)))
                assert ws.receive_json()["type"] == "board"
        with client.websocket_connect(
            "/v1/meetings/c/channel", headers=_auth(idp, "mallory")
        ) as ws:
            reply = ws.receive_json()
            assert reply == {
                "type": "error",
                "code": "too_many_meetings",
                "detail": reply["detail"],
            }
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert (closed.value.code, closed.value.reason) == (4429, "too_many_meetings")
        with client.websocket_connect("/v1/meetings/c/channel", headers=_auth(idp, "bob")) as ws:
            ws.send_text(_text(_message("bob", meeting="c")))
            assert ws.receive_json()["type"] == "board"


def test_a_user_holding_too_many_channels_is_told_and_closed(idp: DevIdp) -> None:
    with (
        _client(idp, ConferenceSettings(channels_per_user=2)) as client,
        client.websocket_connect("/v1/meetings/a/channel", headers=_auth(idp, "mallory")),
        client.websocket_connect("/v1/meetings/b/channel", headers=_auth(idp, "mallory")),
    ):
        with client.websocket_connect(
            "/v1/meetings/a/channel", headers=_auth(idp, "mallory")
        ) as ws:
            reply = ws.receive_json()
            assert reply == {
                "type": "error",
                "code": "too_many_channels",
                "detail": reply["detail"],
            }
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4429
        with client.websocket_connect("/v1/meetings/a/channel", headers=_auth(idp, "bob")) as ws:
            ws.send_text(_text(_message("bob", meeting="a")))
            assert ws.receive_json()["type"] == "board"
    with (  # closed channels no longer count
        _client(idp, ConferenceSettings(channels_per_user=1)) as client,
    ):
        for _ in range(3):
            with client.websocket_connect(
                "/v1/meetings/a/channel", headers=_auth(idp, "amy")
            ) as ws:
                ws.send_text(_text(_message("amy", meeting="a")))
                assert ws.receive_json()["type"] == "board"


def test_a_redis_bus_serves_hundreds_of_channels_at_once() -> None:
    """Each channel waits on its own Redis connection for board and media: 150 channels in
    one process need 300 (redis-py's default pool stops at 100)."""

    async def main(prefix: str) -> None:
        bus = RedisBus(prefix=prefix)
        boards = [bus.board("m1") for _ in range(150)]
        media = [bus.media("m1", asyncio.Event()) for _ in range(150)]
        pending = [asyncio.ensure_future(anext(it)) for it in (*boards, *media)]
        try:
            await asyncio.sleep(0.5)  # every reader is waiting on Redis now
            assert not [p for p in pending if p.done()]
            await bus.post(BoardPost.of(_message("alice")))
            await bus.send_media("m1", "conn", b"frame")
            async with asyncio.timeout(20):
                results = await asyncio.gather(*pending)
            assert {text for _pos, text in results[:150]} == {BoardPost.of(_message("alice")).text}
            assert set(results[150:]) == {("conn", b"frame")}
        finally:
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for it in (*boards, *media):
                await it.aclose()
            await bus.close()

    with fresh_prefix("redis") as prefix:
        asyncio.run(main(prefix))


def test_no_per_meeting_leftovers_once_everyone_has_gone(idp: DevIdp) -> None:
    bus = InProcessBus()
    with _client(idp, ConferenceSettings(), bus) as client:
        for meeting in ("a", "b"):
            with client.websocket_connect(
                f"/v1/meetings/{meeting}/channel", headers=_auth(idp, "alice")
            ) as ws:
                ws.send_text(_text(_message("alice", meeting=meeting)))
                assert ws.receive_json()["type"] == "board"
                assert meeting in bus._board_subs
                assert meeting in bus._media_subs
        deadline = 100
        while (bus._board_subs or bus._media_subs) and deadline:
            client.portal.call(asyncio.sleep, 0.02)  # let the connections' tasks finish
            deadline -= 1
    assert bus._board_subs == {}
    assert bus._media_subs == {}


def test_a_bus_with_other_limits_is_refused(idp: DevIdp) -> None:
    jwks = JwksSource(document=idp.jwks)
    with pytest.raises(ValueError, match="limits"):
        create_conference_app(
            ConferenceSettings(), jwks, InProcessBus(BoardLimits(max_posts_per_user=3))
        )
    with pytest.raises(ValueError, match="limits"):
        create_conference_app(
            ConferenceSettings(board=BoardLimits(max_posts_per_user=3)), jwks, InProcessBus()
        )
