"""Board positions: a client that reconnects resumes after the last message it saw, on
every bus; a board that is gone is said to be gone (4410), never silence; batches."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.board import POSITION, BoardLostError, BoardPost
from sealroom.conference.bus import Bus
from sealroom.crypto.signing import SigningKey
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.meeting.messages import BoardMessage
from tests.brokers import fresh_prefix, make_bus

pytestmark = pytest.mark.timeout(60)
BUSES = ["inprocess", "redis", "nats"]


def _message(user: str, seq: int, meeting: str = "m1") -> BoardMessage:
    return BoardMessage.create(
        SigningKey.generate(),
        meeting=meeting,
        kind="announce",
        user=user,
        device=f"{user}-d",
        seq=seq,
        body={},
    )


async def _read(bus: Bus, n: int, after: str | None = None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    async with asyncio.timeout(20):
        async for item in bus.board("m1", after):
            out.append(item)
            if len(out) == n:
                return out
    raise AssertionError("unreachable")


@pytest.mark.parametrize("kind", BUSES)
def test_a_reader_resumes_after_the_last_position_it_saw(kind: str) -> None:
    async def main(prefix: str) -> None:
        bus = make_bus(kind, prefix)
        other = bus if kind == "inprocess" else make_bus(kind, prefix)  # another process
        try:
            for i in range(5):
                await bus.post(BoardPost.of(_message(f"u{i}", 1)))
            first = await _read(bus, 5)
            assert [t for _, t in first] != []
            assert all(POSITION.fullmatch(p) for p, _ in first)
            assert len({p for p, _ in first}) == 5
            # Another process resumes after the third: the fourth and fifth, then live ones.
            rest = other.board("m1", first[2][0])
            got = [await anext(rest) for _ in range(2)]
            assert [t for _, t in got] == [t for _, t in first[3:]]
            await bus.post(BoardPost.of(_message("late", 1)))
            live = await anext(rest)
            assert json.loads(live[1])["user"] == "late"
            await rest.aclose()
        finally:
            for b in {id(bus): bus, id(other): other}.values():
                await b.close()

    with fresh_prefix(kind) as prefix:
        asyncio.run(main(prefix))


@pytest.mark.parametrize("kind", BUSES)
def test_resuming_on_a_board_that_is_gone_says_so(kind: str) -> None:
    async def main(prefix: str) -> None:
        bus = make_bus(kind, prefix)
        try:
            await bus.post(BoardPost.of(_message("u", 1)))
            ((pos, _),) = await _read(bus, 1)
            stale = "0123456789ab.1" if kind != "nats" else str(int(pos) + 10_000)
            with pytest.raises(BoardLostError):
                await anext(bus.board("m1", stale))
            with pytest.raises(BoardLostError):  # a position of another meeting's board
                await anext(bus.board("m2", pos))
        finally:
            await bus.close()

    with fresh_prefix(kind) as prefix:
        asyncio.run(main(prefix))


def _client(tmp_path: Path) -> tuple[TestClient, DevIdp]:
    idp = DevIdp(tmp_path / "idp")
    app = create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks)
    )
    return TestClient(app), idp


def _post(user: str, seq: int) -> str:
    return json.dumps({"type": "post", "message": json.loads(_message(user, seq).to_json())})


def test_the_channel_gives_positions_resumes_and_batches(tmp_path: Path) -> None:
    client, idp = _client(tmp_path)
    auth = {"authorization": "Bearer " + idp.issue("alice", AUDIENCE)}
    with client, client.websocket_connect("/v1/meetings/m1/channel", headers=auth) as ws:
        for seq in range(1, 6):
            ws.send_text(_post("alice", seq))
        seen: list[dict[str, Any]] = [ws.receive_json() for _ in range(5)]
        assert [m["message"]["seq"] for m in seen] == [1, 2, 3, 4, 5]
        after = seen[1]["pos"]
        url = f"/v1/meetings/m1/channel?after={after}&batch=1"
        with client.websocket_connect(url, headers=auth) as again:
            frame = again.receive_json()
            assert frame["type"] == "board"
            assert [m["message"]["seq"] for m in frame["batch"]] == [3, 4, 5]
            assert frame["batch"][-1]["pos"] == seen[-1]["pos"]
        for bad in ("x", "1.2", "../1", "0123456789ab.1.2"):
            with (
                pytest.raises(WebSocketDisconnect) as exc,
                client.websocket_connect(f"/v1/meetings/m1/channel?after={bad}", headers=auth),
            ):
                pass
            assert exc.value.code == 4400
        gone = "/v1/meetings/m1/channel?after=0123456789ab.3"
        with client.websocket_connect(gone, headers=auth) as lost:
            assert lost.receive_json()["code"] == "board_lost"  # said, then closed
            with pytest.raises(WebSocketDisconnect) as exc:
                lost.receive_json()
            assert exc.value.code == 4410
            assert exc.value.reason == "board_lost"


def _control(kind: str, seq: int, body: dict[str, Any]) -> str:
    m = BoardMessage.create(
        SigningKey.generate(), meeting="m2", kind=kind, user="alice", device="alice-d",
        seq=seq, body=body,
    )  # fmt: skip
    return json.dumps({"type": "post", "message": json.loads(m.to_json())})


def test_a_device_gets_only_the_key_tree_paths_sealed_to_it(tmp_path: Path) -> None:
    client, idp = _client(tmp_path)
    alice = {"authorization": "Bearer " + idp.issue("alice", AUDIENCE)}
    bob = {"authorization": "Bearer " + idp.issue("bob", AUDIENCE)}
    with client, client.websocket_connect("/v1/meetings/m2/channel", headers=alice) as ws:
        ws.send_text(_control("start", 1, {"group_key": "AA", "admins": [], "host": "alice"}))
        ws.send_text(_control("tree-path", 2, {"epoch": 1, "paths": {"carl-d": "AA"}}))
        ws.send_text(_control("tree-path", 3, {"epoch": 1, "paths": {"bob-d": "AA", "x": "AA"}}))
        ws.send_text(_control("end", 4, {}))
        assert [ws.receive_json()["message"]["seq"] for _ in range(4)] == [1, 2, 3, 4]
        url = "/v1/meetings/m2/channel?batch=1&device=bob-d"
        with client.websocket_connect(url, headers=bob) as mine:
            frame = mine.receive_json()
            assert [m["message"]["seq"] for m in frame["batch"]] == [1, 3, 4]  # not carl's
        with client.websocket_connect("/v1/meetings/m2/channel?batch=1", headers=bob) as all_:
            frame = all_.receive_json()  # no device named: everything, as before
            assert [m["message"]["seq"] for m in frame["batch"]] == [1, 2, 3, 4]
