"""Attacks on a meeting's board by someone with nothing but a valid login (issue 9, attack 4).

A stranger can open any meeting's channel: the conferencing service cannot check invitations.
These tests run the attacks through a real uvicorn serving the conferencing service, on
each bus (in-process, and real Redis and NATS on 127.0.0.1, two service processes sharing
the broker), and check that the meeting goes on for the people it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.bus import Bus, InProcessBus
from sealroom.crypto.signing import SigningKey
from sealroom.demo.services import Services
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import Joined, KeyInstalled, Rekeyed
from tests.brokers import fresh_prefix, make_bus
from tests.live_meeting import Person
from tests.live_server import live_server

BUSES = ["inprocess", "redis", "nats"]
FLOOD = 10_000  # what filled a board before


class Raw:
    """One connection speaking the channel protocol by hand, as an attacker's script does."""

    def __init__(self, ws: Any, user: str, key: SigningKey, device: str) -> None:
        self.ws, self.user, self.key, self.device = ws, user, key, device
        self.seq = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, port: int, meeting: str, token: str, user: str, **signer: Any
    ) -> AsyncIterator[Raw]:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/v1/meetings/{meeting}/channel",
            additional_headers={"authorization": f"Bearer {token}"},
            max_size=1 << 22,
            max_queue=None,  # buffer what it does not read, so closing never waits
        )
        try:
            yield cls(
                ws,
                user,
                signer.get("key") or SigningKey.generate(),
                signer.get("device") or f"{user}-d",
            )
        finally:
            await ws.close()

    def message(self, meeting: str, kind: str, body: dict[str, Any]) -> BoardMessage:
        self.seq += 1
        return BoardMessage.create(
            self.key,
            meeting=meeting,
            kind=kind,
            user=self.user,
            device=self.device,
            seq=self.seq,
            body=body,
        )

    async def send(self, m: BoardMessage) -> None:
        await self.ws.send(json.dumps({"type": "post", "message": json.loads(m.to_json())}))

    def _mine(self, reply: dict[str, Any], m: BoardMessage | None = None) -> bool:
        msg = reply.get("message", {})
        return msg.get("device") == self.device and (m is None or msg.get("seq") == m.seq)

    async def reply_to(self, m: BoardMessage) -> dict[str, Any]:
        """Post ``m`` and return what the service answers: an error, or ``m`` on the board."""
        await self.send(m)
        async with asyncio.timeout(30):
            while True:
                reply = json.loads(await self.ws.recv())
                if reply["type"] == "error" or self._mine(reply, m):
                    return dict(reply)

    async def flood(self, messages: list[BoardMessage]) -> tuple[int, list[str]]:
        """Send them all at once; (how many reached the board, the error codes)."""
        for m in messages:
            await self.send(m)
        accepted, errors = 0, []
        async with asyncio.timeout(120):
            while accepted + len(errors) < len(messages):
                reply = json.loads(await self.ws.recv())
                if reply["type"] == "error":
                    errors.append(reply["code"])
                elif self._mine(reply):
                    accepted += 1
        return accepted, errors

    async def board(self, meeting: str) -> list[dict[str, Any]]:
        """Every board message before this connection's own (fresh) announce."""
        probe = self.message(meeting, "announce", {})
        await self.send(probe)
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while True:
                reply = json.loads(await self.ws.recv())
                assert reply["type"] == "board", reply
                if self._mine(reply, probe):
                    return seen
                seen.append(reply["message"])


@contextlib.contextmanager
def _buses(kind: str, **options: Any) -> Iterator[tuple[Bus, Bus]]:
    """Two service processes' buses on one fresh broker (in-process: one bus, shared)."""
    with fresh_prefix(kind) as prefix:
        one = make_bus(kind, prefix, **options)
        yield one, (one if kind == "inprocess" else make_bus(kind, prefix, **options))


@contextlib.asynccontextmanager
async def _two_services(
    settings: ConferenceSettings, jwks: JwksSource, one: Bus, two: Bus
) -> AsyncIterator[tuple[int, int]]:
    app_one = create_conference_app(settings, jwks, one)
    app_two = app_one if two is one else create_conference_app(settings, jwks, two)
    try:
        async with live_server(app_one) as p1, live_server(app_two) as p2:
            yield p1, p2
    finally:
        await one.close()
        if two is not one:
            await two.close()


# --- a stranger floods the board, then an invitee joins (real key service, real SDK) ---


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("flood")
    running = Services(tmp)
    try:
        yield {"idp": running.idp, "ks": running.ks, "conf": running.conf, "tmp": str(tmp)}
    finally:
        running.stop()


async def _flood_then_join(servers: dict[str, str], one: Bus, two: Bus) -> None:
    jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
    meeting = f"flood-{uuid.uuid4().hex[:8]}"
    config = MeetingConfig(meeting, host="hana", invitees=("bob",))
    async with _two_services(ConferenceSettings(), jwks, one, two) as (p1, p2):
        at = {1: f"http://127.0.0.1:{p1}", 2: f"http://127.0.0.1:{p2}"}
        hana = Person({**servers, "conf": at[1]}, "hana", config)
        bob = Person({**servers, "conf": at[2]}, "bob", config)
        mallory = Person({**servers, "conf": at[1]}, "mallory", config)
        try:
            await (await hana.enter()).start()
            await hana.wait(KeyInstalled)

            # A stranger with a real account and device posts 10,000 announces.
            await mallory.sdk.initialize()
            token = str(mallory.token(AUDIENCE))
            signer = {"key": mallory.sdk._signer(), "device": mallory.sdk.device_id}
            async with Raw.open(p1, meeting, token, "mallory", **signer) as raw:
                raw.seq = 1 << 40  # above anything her SDK would number
                flood = [raw.message(meeting, "announce", {}) for _ in range(FLOOD)]
                accepted, errors = await raw.flood(flood)

                # The invitee, on another service process, still joins and gets the key.
                await (await bob.enter()).join()
                try:
                    await bob.wait(Joined, timeout=60)
                except TimeoutError:
                    seen = [(e.name, getattr(e, "code", None)) for e in bob.seen]
                    raise AssertionError(f"the invitee never joined; it saw {seen}") from None
                await hana.wait(Rekeyed, reason="join")
                await bob.frames_from(hana, b"after the flood")
            assert accepted <= ConferenceSettings().board.max_posts_per_user
            assert set(errors) <= {"quota_exceeded", "rate_limited"}
        finally:
            for p in (hana, bob, mallory):
                if p.mc is not None:
                    await p.mc.close()
                await p.sdk.aclose()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", BUSES)
def test_stranger_flooding_the_board_cannot_block_joins(
    services: dict[str, str], kind: str
) -> None:
    with _buses(kind) as (one, two):
        asyncio.run(_flood_then_join(services, one, two))


# --- control messages from someone the board does not name ---


def _start_body(host: str, admins: list[str]) -> dict[str, Any]:
    return {"group_key": "AA", "admins": admins, "host": host}


async def _stranger_posts_control(idp: DevIdp, one: Bus, two: Bus) -> None:
    jwks = JwksSource(document=idp.jwks)
    meeting = f"ctl-{uuid.uuid4().hex[:8]}"
    tok = {u: idp.issue(u, AUDIENCE) for u in ("hana", "ivan", "mallory", "rita")}
    async with _two_services(ConferenceSettings(), jwks, one, two) as (p1, p2):
        async with (
            Raw.open(p1, meeting, tok["hana"], "hana") as hana,
            Raw.open(p2, meeting, tok["mallory"], "mallory") as mallory,
        ):
            start = hana.message(meeting, "start", _start_body("hana", ["hana"]))
            assert (await hana.reply_to(start))["type"] == "board"
            key = hana.message(meeting, "session-key", {"epoch": 0})
            assert (await hana.reply_to(key))["type"] == "board"

            attempts = [
                ("session-key", {"epoch": 1}),
                ("remove", {"user": "hana"}),
                ("admit", {"user": "mallory"}),
                ("manager", {"manager": "mallory", "admins": ["mallory"]}),
                ("end", {}),
                ("start", _start_body("mallory", ["mallory"])),
            ]
            for kind, body in attempts:
                reply = await mallory.reply_to(mallory.message(meeting, kind, body))
                expected = "already_started" if kind == "start" else "not_allowed"
                assert reply["type"] == "error", (kind, reply)
                assert reply["code"] == expected, (kind, reply)

            # The host hands over to ivan, who posts from the other service process.
            handover = hana.message(meeting, "manager", {"manager": "ivan", "admins": ["hana"]})
            assert (await hana.reply_to(handover))["type"] == "board"
            async with Raw.open(p2, meeting, tok["ivan"], "ivan") as ivan:
                assert (await ivan.reply_to(ivan.message(meeting, "session-key", {})))[
                    "type"
                ] == "board"

            # And mallory is still connected, still refused, still able to announce.
            reply = await mallory.reply_to(mallory.message(meeting, "end", {}))
            assert reply["code"] == "not_allowed"
            assert (await mallory.reply_to(mallory.message(meeting, "announce", {})))[
                "type"
            ] == "board"

        async with Raw.open(p1, meeting, tok["rita"], "rita") as rita:
            board = await rita.board(meeting)
        control = [(m["user"], m["kind"]) for m in board if m["kind"] != "announce"]
        assert control == [
            ("hana", "start"),
            ("hana", "session-key"),
            ("hana", "manager"),
            ("ivan", "session-key"),
        ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", BUSES)
def test_stranger_cannot_post_control_messages(tmp_path: Path, kind: str) -> None:
    idp = DevIdp(tmp_path / "idp")
    with _buses(kind) as (one, two):
        asyncio.run(_stranger_posts_control(idp, one, two))


# --- NATS: the newest posts used to push out the start and every session key ---


async def _push_out(idp: DevIdp, one: Bus, two: Bus) -> None:
    jwks = JwksSource(document=idp.jwks)
    meeting = f"nats-{uuid.uuid4().hex[:8]}"
    async with _two_services(ConferenceSettings(), jwks, one, two) as (p1, p2):
        async with Raw.open(p1, meeting, idp.issue("hana", AUDIENCE), "hana") as hana:
            for m in (
                hana.message(meeting, "start", _start_body("hana", ["hana"])),
                *(hana.message(meeting, "session-key", {"epoch": n}) for n in range(3)),
            ):
                assert (await hana.reply_to(m))["type"] == "board"
        async with Raw.open(p2, meeting, idp.issue("mallory", AUDIENCE), "mallory") as mallory:
            flood = [mallory.message(meeting, "announce", {}) for _ in range(FLOOD + 50)]
            accepted, _errors = await mallory.flood(flood)
        async with Raw.open(p1, meeting, idp.issue("rita", AUDIENCE), "rita") as rita:
            board = await rita.board(meeting)
        kinds = [m["kind"] for m in board if m["user"] == "hana"]
        assert kinds == ["start", "session-key", "session-key", "session-key"]
        assert accepted <= ConferenceSettings().board.max_posts_per_user


@pytest.mark.timeout(180)
def test_stranger_cannot_push_out_session_keys_on_nats(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path / "idp")
    with _buses("nats") as (one, two):
        asyncio.run(_push_out(idp, one, two))


# --- invented meeting ids: the service's memory ---


def _retained(obj: object) -> int:
    """Bytes held by ``obj`` and everything it reaches through containers and Sealroom
    objects (not through the event loop, queues or locks it merely refers to)."""
    seen: set[int] = set()
    total, todo = 0, deque([obj])
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            todo.extend(o.keys())
            todo.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset | deque):
            todo.extend(o)
        elif type(o).__module__.startswith("sealroom.") and hasattr(o, "__dict__"):
            todo.extend(vars(o).values())
    return total


async def _invent_meetings(idp: DevIdp, count: int) -> tuple[InProcessBus, list[str]]:
    bus = InProcessBus()
    app = create_conference_app(ConferenceSettings(), JwksSource(document=idp.jwks), bus)
    token = idp.issue("mallory", AUDIENCE)
    refusals: list[str] = []
    padding = "x" * 60_000  # a control post may be 64 KiB
    async with live_server(app) as port:
        for i in range(count):
            meeting = f"invented-{i}"
            async with Raw.open(port, meeting, token, "mallory") as raw:
                start = raw.message(meeting, "start", {"admins": [], "pad": padding})
                try:
                    reply = await raw.reply_to(start)
                except websockets.ConnectionClosed as closed:  # refused before our post
                    refusals.append(closed.rcvd.reason if closed.rcvd else "closed")
                    continue
                if reply["type"] == "error":
                    refusals.append(reply["code"])
    return bus, refusals


@pytest.mark.timeout(120)
def test_invented_meeting_ids_do_not_grow_memory(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path / "idp")
    bus, refusals = asyncio.run(_invent_meetings(idp, 200))
    # 200 invented meetings with a 60 KB post each would hold 12 MB; one user may open
    # 32 meetings in 10 minutes (the default), so at most 32 boards stay, until they
    # expire idle: about 2 MB.
    assert _retained(bus) < 4 * 1024 * 1024
    settings = ConferenceSettings()
    assert refusals == ["too_many_meetings"] * (200 - settings.meetings_per_user)


# --- many channels from one stranger: the relay's connections to its broker ---


async def _many_channels(idp: DevIdp, one: Bus) -> None:
    jwks = JwksSource(document=idp.jwks)
    meeting = f"conns-{uuid.uuid4().hex[:8]}"
    app = create_conference_app(ConferenceSettings(), jwks, one)
    try:
        async with live_server(app) as port, contextlib.AsyncExitStack() as stack:
            token = idp.issue("mallory", AUDIENCE)
            refused: list[str] = []
            for _ in range(40):  # each channel used to hold two Redis connections
                raw = await stack.enter_async_context(Raw.open(port, meeting, token, "mallory"))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.3):
                        refused.append(json.loads(await raw.ws.recv())["code"])
            # Sixty honest participants on the same service process still get through.
            for i in range(60):
                user = f"guest{i}"
                raw = await stack.enter_async_context(
                    Raw.open(port, meeting, idp.issue(user, AUDIENCE), user)
                )
                reply = await raw.reply_to(raw.message(meeting, "announce", {}))
                assert reply["type"] == "board", (user, reply)
            assert refused == ["too_many_channels"] * (40 - ConferenceSettings().channels_per_user)
    finally:
        await one.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", BUSES)
def test_stranger_opening_many_channels_cannot_exhaust_the_relay(tmp_path: Path, kind: str) -> None:
    idp = DevIdp(tmp_path / "idp")
    with _buses(kind) as (one, _two):
        asyncio.run(_many_channels(idp, one))
