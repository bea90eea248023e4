"""The board's two lanes, its caps and its control posters, on every bus (real Redis and
NATS on 127.0.0.1, two buses standing for two service processes), without the app."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.js.api import StreamConfig

from sealroom.conference.board import (
    CONTROL_KINDS,
    PARTICIPANT_KINDS,
    BoardLimits,
    BoardPost,
    BoardRefusedError,
)
from sealroom.conference.bus import Bus
from sealroom.crypto.signing import SigningKey
from sealroom.meeting.messages import KINDS, BoardMessage
from tests.brokers import fresh_prefix, make_bus

pytestmark = pytest.mark.timeout(60)
KEY = SigningKey.generate()
SEQ = itertools.count(1)  # every post distinct
SMALL = BoardLimits(max_control_posts=5, max_participant_posts=6, max_posts_per_user=3)


def post(
    user: str, kind: str, body: dict[str, Any] | None = None, meeting: str = "m1"
) -> BoardPost:
    m = BoardMessage.create(
        KEY,
        meeting=meeting,
        kind=kind,
        user=user,
        device=f"{user}-d",
        seq=next(SEQ),
        body=body or {},
    )
    return BoardPost.of(m)


def start(user: str = "hana", admins: tuple[str, ...] = (), host: str | None = None) -> BoardPost:
    return post(user, "start", {"group_key": "AA", "admins": list(admins), "host": host})


async def refusal(bus: Bus, p: BoardPost) -> str | None:
    try:
        await bus.post(p)
    except BoardRefusedError as exc:
        return exc.code
    return None


async def history(bus: Bus, meeting: str = "m1", marker: BoardPost | None = None) -> list[Any]:
    """The board up to and including ``marker`` (posted now, by someone allowed to)."""
    marker = marker or post("zed-reader", "announce", meeting=meeting)
    await bus.post(marker)
    seen: list[Any] = []
    async with asyncio.timeout(20):
        async for _pos, text in bus.board(meeting):
            m = json.loads(text)
            seen.append((m["user"], m["kind"]))
            if text == marker.text:
                return seen[:-1]
    raise AssertionError("unreachable")


@pytest.fixture(params=["inprocess", "redis", "nats"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def two(kind: str, limits: BoardLimits = SMALL) -> Iterator[tuple[Bus, Bus]]:
    with fresh_prefix(kind) as prefix:
        one = make_bus(kind, prefix, limits=limits)
        yield one, (one if kind == "inprocess" else make_bus(kind, prefix, limits=limits))


def run(one: Bus, other: Bus, body: Any) -> None:
    async def main() -> None:
        try:
            await body
        finally:
            await one.close()
            if other is not one:
                await other.close()

    asyncio.run(main())


def test_the_lanes_cover_every_board_kind() -> None:
    assert CONTROL_KINDS | PARTICIPANT_KINDS == KINDS
    assert not CONTROL_KINDS & PARTICIPANT_KINDS


def test_control_posters_come_from_the_board(kind: str) -> None:
    async def body(one: Bus, other: Bus) -> None:
        assert await refusal(other, post("hana", "session-key")) == "not_allowed"  # no start
        assert await refusal(one, start("hana", admins=("ada",), host="hugo")) is None
        # The other process learns the posters from the board.
        for user in ("hana", "ada", "hugo"):
            assert await refusal(other, post(user, "session-key")) is None
        for k in sorted(CONTROL_KINDS - {"start"}):
            assert await refusal(other, post("mallory", k, {"manager": "mallory"})) == "not_allowed"
        assert await refusal(other, start("mallory")) == "already_started"
        assert await refusal(one, start("hana")) == "already_started"
        # A manager post by a control poster names new ones; the other process reads it.
        handover = post("hana", "manager", {"manager": "ivan", "admins": ["amy"]})
        assert await refusal(one, handover) is None
        assert await refusal(other, post("ivan", "session-key")) is None
        assert await refusal(other, post("amy", "end")) is None
        assert await refusal(other, post("mallory", "announce")) is None  # anyone announces
        assert await history(other) == [
            ("hana", "start"),
            ("hana", "session-key"),
            ("ada", "session-key"),
            ("hugo", "session-key"),
            ("hana", "manager"),
            ("ivan", "session-key"),
            ("amy", "end"),
            ("mallory", "announce"),
        ]

    with two(kind, BoardLimits()) as (one, other):
        run(one, other, body(one, other))


def test_one_user_is_capped_in_the_participant_lane(kind: str) -> None:
    async def body(one: Bus, other: Bus) -> None:
        codes = [
            await refusal(one if i % 2 else other, post("mallory", "announce")) for i in range(5)
        ]
        assert codes == [None, None, None, "quota_exceeded", "quota_exceeded"]
        assert await refusal(other, post("bob", "leave")) is None

    with two(kind) as (one, other):
        run(one, other, body(one, other))


def test_a_full_participant_lane_leaves_the_control_lane_open(kind: str) -> None:
    async def body(one: Bus, other: Bus) -> None:
        assert await refusal(one, start()) is None
        for user in ("u1", "u2"):
            for _ in range(3):
                assert await refusal(other, post(user, "announce")) is None
        # In memory and on Redis the lane is full; on NATS only the per-user cap applies.
        expected = None if kind == "nats" else "board_full"
        assert await refusal(other, post("u3", "announce")) == expected
        assert await refusal(other, post("hana", "session-key")) is None
        seen = await history(one, marker=post("hana", "remove", {"user": "u1"}))
        assert seen[0] == ("hana", "start")
        assert ("hana", "session-key") in seen

    with two(kind) as (one, other):
        run(one, other, body(one, other))


def test_a_full_control_lane_refuses_and_keeps_what_it_has(kind: str) -> None:
    async def body(one: Bus, other: Bus) -> None:
        assert await refusal(one, start()) is None
        accepted = 1
        for i in range(20):
            code = await refusal(one if i % 2 else other, post("hana", "session-key"))
            if code is not None:
                assert code == "board_full"
                break
            accepted += 1
        # On NATS the cap is rounded up to whole chunk subjects (3 of 3 posts here).
        assert SMALL.max_control_posts <= accepted <= SMALL.max_control_posts + 3 + 1
        assert await refusal(one, post("hana", "session-key")) == "board_full"
        assert await refusal(other, post("bob", "announce")) is None
        seen = await history(one)
        assert seen[0] == ("hana", "start")
        assert seen.count(("hana", "session-key")) == accepted - 1

    with two(kind) as (one, other):
        run(one, other, body(one, other))


def test_a_flood_from_many_users_pushes_nothing_out(kind: str) -> None:
    """Without the app's rate limit: 40 users, each far beyond its cap, on two processes."""
    limits = BoardLimits(max_posts_per_user=8)

    async def body(one: Bus, other: Bus) -> None:
        assert await refusal(one, start()) is None
        assert await refusal(one, post("hana", "session-key")) is None
        codes: list[str | None] = []
        for _ in range(12):  # each round: the 40 users at once
            codes += await asyncio.gather(
                *(refusal(one if u % 2 else other, post(f"s{u}", "announce")) for u in range(40))
            )
        assert codes.count(None) == 40 * 8
        assert set(codes) == {None, "quota_exceeded"}
        seen = await history(other, marker=post("hana", "session-key"))
        assert seen[:2] == [("hana", "start"), ("hana", "session-key")]
        assert len(seen) == 2 + 40 * 8

    with two(kind, limits) as (one, other):
        run(one, other, body(one, other))


def test_participant_posts_are_small(kind: str) -> None:
    async def body(one: Bus, other: Bus) -> None:
        big = post("bob", "announce", {"pad": "x" * SMALL.max_participant_post_bytes})
        assert await refusal(one, big) == "message_too_large"
        assert await refusal(one, start("hana")) is None
        key = post("hana", "session-key", {"pad": "x" * 50_000})  # control posts may be large
        assert await refusal(other, key) is None

    with two(kind) as (one, other):
        run(one, other, body(one, other))


def test_nats_takes_over_a_stream_of_the_earlier_layout_and_leaves_no_consumers() -> None:
    with fresh_prefix("nats") as prefix:

        async def main() -> None:
            nc = await nats.connect("nats://127.0.0.1:4222")
            try:
                js = nc.jetstream()  # what the bus made before it had lanes
                await js.add_stream(
                    StreamConfig(
                        name=f"{prefix}_board",
                        subjects=[f"{prefix}.board.*"],
                        max_age=86400.0,
                        max_msgs_per_subject=10_000,
                    )
                )
                one, other = make_bus("nats", prefix), make_bus("nats", prefix)
                try:
                    assert await refusal(one, start("hana", admins=("ada",))) is None
                    assert await refusal(other, post("ada", "session-key")) is None  # a read
                    assert await refusal(other, post("mallory", "end")) == "not_allowed"
                finally:
                    await one.close()
                    await other.close()
                info = await js.stream_info(f"{prefix}_board")
                assert info.config.discard_new_per_subject
                assert info.config.max_msgs_per_subject == BoardLimits().max_posts_per_user
                assert info.state.consumer_count == 0  # the refreshes' consumers are gone
            finally:
                await nc.close()

        asyncio.run(main())
