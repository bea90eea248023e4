"""A whole meeting of real clients against real services on 127.0.0.1: the IdP, the key
service and the conferencing service run as processes; the clients use the SDK and the
asyncio meeting client. Time is compressed (debounce 0.5 s, ratchet every 4 s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.bus import InProcessBus
from sealroom.crypto.envelope import Envelope
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.media.keys import FrameRejectedError, Receiver
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import (
    ChannelClosed,
    DeviceRotated,
    FrameReceived,
    Joined,
    KeyInstalled,
    Knock,
    Rekeyed,
    ServiceRefusedError,
    Target,
)
from tests.live_meeting import Person, newest_envelope, running_services
from tests.live_server import live_server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from running_services(tmp_path_factory)


async def _meeting(servers: dict[str, str]) -> None:
    config = MeetingConfig("standup", host="hana", invitees=("bob",))
    uma, bob, carl, hana = (Person(servers, u, config) for u in ("uma", "bob", "carl", "hana"))
    for p in (bob, carl, hana):
        await p.sdk.initialize()  # they have accounts; only bob is pre-approved
    try:
        # Start by U0 (the host is late); the pre-approved invitee joins at once.
        await (await uma.enter()).start()
        await uma.wait(KeyInstalled)
        await (await bob.enter()).join()
        joined = await uma.wait(Rekeyed, reason="join")  # the join ratchets the key
        await bob.wait(Joined)
        assert joined.epoch >= 1
        assert (bob.epoch() or 0) >= joined.epoch
        await bob.frames_from(uma, b"frame-1")

        # A participant who was not invited knocks; the manager admits it.
        earlier = newest_envelope(uma)  # epoch 1, posted before carl knocked
        await (await carl.enter()).join()
        await uma.wait(Knock, user="carl")
        assert uma.mc is not None
        await uma.mc.admit("carl")
        await carl.wait(Joined)
        # Now a member of the meeting group, carl still cannot have the earlier key opened.
        with pytest.raises(ServiceRefusedError, match="before_membership"):
            await carl.sdk.decrypt_unmanaged(
                Envelope.from_bytes(earlier), 0, Target.group("standup")
            )
        await carl.frames_from(bob, b"frame-2")
        await uma.frames_from(carl, b"frame-3")

        # The late host takes over and rekeys.
        await (await hana.enter()).join()
        await hana.wait(Joined)
        await bob.wait(Rekeyed, reason="takeover")
        assert {p.mc.session.manager for p in (uma, bob, carl, hana)} == {"hana"}  # type: ignore[union-attr]
        await bob.frames_from(hana, b"frame-4")

        # A leave: the debounced fresh key reaches everyone else.
        before = bob.epoch()
        assert before is not None
        assert carl.mc is not None
        await carl.mc.leave()
        fresh = {(await p.wait(Rekeyed, reason="leave")).epoch for p in (bob, uma, hana)}
        assert len(fresh) == 1  # one fresh key, the same for everyone left
        assert fresh.pop() > before
        await uma.frames_from(bob, b"frame-5")

        # A removal: bob keeps the relayed stream and its old keys, and reads nothing new.
        assert bob.mc is not None
        old_epoch, old_sk = bob.mc.session.epoch, bob.mc.session._sk
        assert old_epoch is not None
        assert old_sk is not None
        assert hana.mc is not None
        await hana.mc.remove("bob")
        await uma.wait(Rekeyed, reason="leave")
        rogue = Receiver()  # what a removed client that ignores the order still holds
        rogue.install(old_epoch, old_sk, 0.0)
        leaked = 0
        assert uma.mc is not None
        for i in range(20):
            await uma.mc.publish(b"after-removal-%d" % i)
        await asyncio.sleep(0.5)
        while True:
            try:
                event = await bob.mc.next_event(timeout=0.01)
            except TimeoutError:
                break
            if isinstance(event, FrameReceived):
                leaked += 1
        assert leaked == 0
        assert uma.mc._sender is not None
        rogue_frame = uma.mc._sender.encrypt(b"", b"secret")
        with pytest.raises(FrameRejectedError):
            rogue.decrypt(b"", rogue_frame, 0.0)
        envelope_raw = newest_envelope(hana)
        with pytest.raises(ServiceRefusedError):
            await bob.sdk.decrypt_unmanaged(
                Envelope.from_bytes(envelope_raw), 0, Target.group("standup")
            )
        await hana.frames_from(uma, b"frame-6")

        # The scheduled ratchet.
        epoch = uma.epoch()
        assert epoch is not None
        ratcheted = await uma.wait(Rekeyed, reason="timer", after_epoch=epoch)
        await hana.wait(Rekeyed, reason="timer", epoch=ratcheted.epoch)

        # The manager drops: another admin (U0) takes over and rekeys.
        await hana.mc.leave()
        await uma.wait(Rekeyed, reason="takeover")
        assert uma.mc.session.manager == "uma"

        # The end: the group is deleted, keys dropped, the device key rotated.
        old_device = uma.sdk.device_id
        await uma.mc.end()
        await uma.wait(DeviceRotated)
        assert uma.mc.session.epoch is None
        assert uma.mc.receiver.epochs == []
        assert uma.sdk.device_id != old_device
        with pytest.raises(ServiceRefusedError, match="not_found"):
            await uma.sdk.group("standup")
    finally:
        for p in (uma, bob, carl, hana):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_a_whole_meeting_over_real_services(servers: dict[str, str]) -> None:
    asyncio.run(_meeting(servers))


class _BoardDownBus(InProcessBus):
    """A broker whose board stream has failed."""

    async def board(self, meeting: str) -> AsyncIterator[str]:
        raise ConnectionError("broker gone")
        yield ""  # pragma: no cover - makes this an async generator


async def _channel_closed(servers: dict[str, str]) -> None:
    jwks = JwksSource(url=f"{servers['idp']}/.well-known/jwks.json")
    app = create_conference_app(ConferenceSettings(), jwks, _BoardDownBus())
    async with live_server(app) as port:
        ivy = Person(
            {**servers, "conf": f"http://127.0.0.1:{port}"}, "ivy", MeetingConfig("cut", host="ivy")
        )
        try:
            mc = await ivy.enter()
            await mc.connect()
            event = await ivy.wait(ChannelClosed)
            assert event == ChannelClosed(code=1011, reason="relay_failed")
            await mc.close()
        finally:
            await ivy.sdk.aclose()


def test_the_client_hears_when_the_service_closes_the_channel(servers: dict[str, str]) -> None:
    asyncio.run(_channel_closed(servers))
