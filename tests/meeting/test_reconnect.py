"""The meeting client rides out a conferencing service that goes away: it reconnects,
backing off, resumes the board after the last message it saw, sends what it posted
meanwhile, and keeps getting keys; a board that is gone is reported, not waited on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn

from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.board import BoardPost
from sealroom.conference.bus import InProcessBus
from sealroom.demo.services import free_port
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import (
    BoardLost,
    ChannelClosed,
    Joined,
    KeyInstalled,
    Knock,
    Reconnected,
    Rekeyed,
    Retrying,
)
from sealroom.sdk.meeting import MAX_POST_SENDS, _OwnPost
from tests.live_meeting import Person, running_services

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from running_services(tmp_path_factory)


@contextlib.asynccontextmanager
async def _serve(app: Any, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        server.force_exit = True
        await serving


async def _outage(servers: dict[str, str], *, keep_board: bool) -> None:
    jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
    bus = InProcessBus()
    port = free_port()
    conf = f"http://127.0.0.1:{port}"
    config = MeetingConfig("outage-" + str(port), host="uma", invitees=("bob", "carl"))
    uma, bob, carl = (Person({**servers, "conf": conf}, u, config) for u in ("uma", "bob", "carl"))
    try:
        async with _serve(create_conference_app(ConferenceSettings(), jwks, bus), port):
            await (await uma.enter()).start()
            await uma.wait(KeyInstalled)
            await (await bob.enter()).join()
            await bob.wait(Joined)
        # The service is gone: both notice; uma posts meanwhile (carl's join is let in
        # only after it is back, from the outbox and the resumed board).
        await bob.wait(ChannelClosed)
        await uma.wait(ChannelClosed)
        assert uma.mc is not None
        await uma.mc.remove("carl")  # an invitee not even here yet: a post while down
        if not keep_board:
            bus = InProcessBus()  # a restart without persistence: the board is lost
        async with _serve(create_conference_app(ConferenceSettings(), jwks, bus), port):
            if not keep_board:
                await bob.wait(BoardLost, timeout=30)
                return
            await bob.wait(Reconnected, timeout=30)
            await uma.wait(Reconnected, timeout=30)
            epoch = bob.epoch()
            assert epoch is not None
            await (await carl.enter()).join()  # carl was removed meanwhile: it knocks
            await uma.wait(Knock, user="carl")
            await uma.mc.admit("carl")
            await carl.wait(Joined)
            await bob.wait(Rekeyed, after_epoch=epoch)  # bob follows on, on the new socket
            assert bob.epoch() == uma.epoch() == carl.epoch()
            await bob.frames_from(uma, b"after the outage")
    finally:
        for p in (uma, bob, carl):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_the_client_reconnects_resumes_the_board_and_sends_what_it_posted_meanwhile(
    servers: dict[str, str],
) -> None:
    asyncio.run(_outage(servers, keep_board=True))


def test_a_board_lost_with_the_service_is_reported_not_waited_on(
    servers: dict[str, str],
) -> None:
    asyncio.run(_outage(servers, keep_board=False))


async def _first_connection_shed(servers: dict[str, str]) -> None:
    jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
    port = free_port()
    conf = f"http://127.0.0.1:{port}"
    config = MeetingConfig("shed-" + str(port), host="uma", invitees=("bob",))
    uma, bob = (Person({**servers, "conf": conf}, u, config) for u in ("uma", "bob"))
    # One handshake at once, then one every 5 s: bob's first is refused with 429.
    settings = ConferenceSettings(connect_rate=0.2, connect_burst=1)
    try:
        async with _serve(create_conference_app(settings, jwks, InProcessBus()), port):
            await (await uma.enter()).start()
            bob_mc = await bob.enter()
            await bob_mc.join()  # asks again after the 429, and gets in
            await bob.wait(Joined)
            assert any(isinstance(e, Retrying) for e in bob.seen)
    finally:
        for p in (uma, bob):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_a_first_connection_refused_for_load_is_asked_for_again(
    servers: dict[str, str],
) -> None:
    asyncio.run(_first_connection_shed(servers))


class BrokerFailingOnce(InProcessBus):
    """The in-process broker, failing ``times`` times on posts of ``kind`` by ``user``: the
    relay took the post and could not store it (it closes that channel with 1011)."""

    def __init__(self, user: str, kind: str, times: int = 1) -> None:
        super().__init__()
        self.fail: tuple[str, str] | None = (user, kind)
        self.times = times

    async def post(self, post: BoardPost) -> None:
        if self.fail == (post.user, post.kind):
            self.times -= 1
            if self.times == 0:
                self.fail = None
            raise ConnectionError("the broker failed")
        await super().post(post)


async def _post_lost(servers: dict[str, str], user: str, kind: str) -> None:
    jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
    port = free_port()
    conf = f"http://127.0.0.1:{port}"
    config = MeetingConfig("lost-" + str(port), host="uma", invitees=("bob",))
    uma, bob = (Person({**servers, "conf": conf}, u, config) for u in ("uma", "bob"))
    bus = BrokerFailingOnce(user, kind)
    try:
        async with _serve(create_conference_app(ConferenceSettings(), jwks, bus), port):
            await (await uma.enter()).start()
            await uma.wait(KeyInstalled)
            await (await bob.enter()).join()
            await bob.wait(Joined, timeout=60)
            assert bus.fail is None  # the post did fail once
            who = uma if user == "uma" else bob
            if not any(isinstance(e, Reconnected) for e in who.seen):
                await who.wait(Reconnected)
            assert any(isinstance(e, ChannelClosed) and e.code == 1011 for e in who.seen)
            assert bob.epoch() == uma.epoch()
            await bob.frames_from(uma, b"after the lost post")
    finally:
        for p in (uma, bob):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


@pytest.mark.parametrize(("user", "kind"), [("bob", "announce"), ("uma", "session-key")])
def test_a_post_the_relay_took_but_could_not_store_is_sent_again(
    servers: dict[str, str], user: str, kind: str
) -> None:
    """The joiner's announce, or the manager's key for the joiner, lost with a failing
    broker: the client sees the channel close, reconnects, and sends again what the board
    never showed; the joiner gets its key (before, it waited for ever)."""
    asyncio.run(_post_lost(servers, user, kind))


def test_only_our_own_users_posts_confirm_ours(servers: dict[str, str]) -> None:
    """A post naming our device id in another user's name (the relay lets anyone post in
    their own name with any device id) confirms nothing: our unconfirmed posts would then
    never be sent again after a broker failure."""

    async def go() -> None:
        config = MeetingConfig("confirm-" + str(free_port()), host="uma")
        uma = Person({**servers, "conf": "http://127.0.0.1:9"}, "uma", config)
        mc = await uma.enter()
        try:
            mc._unconfirmed.append(_OwnPost(mc.session._seq + 1, "{}", sends=1))

            def echo(user: str, seq: int) -> str:
                message = {"user": user, "device": mc.session.device, "seq": seq}
                return json.dumps({"type": "board", "pos": "7", "message": message})

            mc._on_channel_text(echo("eve", 2**53))
            assert len(mc._unconfirmed) == 1
            mc._on_channel_text(echo("uma", mc.session._seq + 1))
            assert len(mc._unconfirmed) == 0
        finally:
            await mc.close()
            await uma.sdk.aclose()

    asyncio.run(go())


def test_a_post_the_broker_keeps_failing_on_is_given_up_and_holds_nothing_back(
    servers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The broker fails on every send of one post (a removal of an invitee who is not
    here): after MAX_POST_SENDS sends it is given up, with a warning, and the posts after
    it (the key for a joiner) go through."""

    async def go() -> None:
        jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
        port = free_port()
        conf = f"http://127.0.0.1:{port}"
        config = MeetingConfig("poison-" + str(port), host="uma", invitees=("bob", "carl"))
        uma, bob = (Person({**servers, "conf": conf}, u, config) for u in ("uma", "bob"))
        bus = BrokerFailingOnce("uma", "remove", times=100)
        try:
            async with _serve(create_conference_app(ConferenceSettings(), jwks, bus), port):
                await (await uma.enter()).start()
                await uma.wait(KeyInstalled)
                assert uma.mc is not None
                await uma.mc.remove("carl")
                await (await bob.enter()).join()
                await bob.wait(Joined, timeout=90)
                assert bus.times == 100 - MAX_POST_SENDS
                assert bob.epoch() == uma.epoch()
        finally:
            for p in (uma, bob):
                if p.mc is not None:
                    await p.mc.close()
                await p.sdk.aclose()

    asyncio.run(go())
    assert "posts never reached the board; given up" in caplog.text
