"""Typed meeting events and key export at the SDK boundary (no services needed)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from sealroom.media.keys import Sender, sender_base_key
from sealroom.media.sframe import SFrameContext
from sealroom.meeting.session import InstallMediaKey, Notify, RetireMediaKeys
from sealroom.sdk import (
    BasicSplitTrust,
    Client,
    Ended,
    FrameReceived,
    Joined,
    KeyInstalled,
    KeyProvider,
    Knock,
    Left,
    MeetingClient,
    MeetingConfig,
    MeetingEvent,
    MeetingStateError,
    ParticipantLeft,
    Rekeyed,
    SenderKey,
)
from sealroom.sdk.events import EVENT_TYPES


def test_the_meeting_core_notifies_typed_events_that_the_sdk_knows() -> None:
    """The core's notifications are the typed events themselves (``Notify(event)``, checked
    by mypy); a scripted meeting shows each one it makes is a type the SDK lists."""
    from tests.meeting.harness import World

    w = World(MeetingConfig("m-1", host="uma", invitees=("bob", "carl")))
    for u in ("uma", "bob", "carl", "zed"):
        w.add(u)
    w.run("uma", "start")
    for u in ("bob", "carl", "zed"):
        w.run(u, "join")
    w.run("uma", "admit", "zed")
    w.run("uma", "remove", "carl")
    w.advance(30)
    w.run("uma", "end")
    made = [e for u in w.people for e in w.notices(u)]
    assert {type(e) for e in made} >= {Joined, KeyInstalled, Rekeyed, Knock, ParticipantLeft, Ended}
    for event in made:
        assert isinstance(event, MeetingEvent)
        assert EVENT_TYPES[event.name] is type(event)


def test_every_event_type_is_frozen_documented_and_named_once() -> None:
    assert len({cls.name for cls in EVENT_TYPES.values()}) == len(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        assert cls.name == name
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert cls.__doc__
        for f in dataclasses.fields(cls):
            assert f"``{f.name}``" in cls.__doc__, f"{cls.__name__}.{f.name} is not described"


def test_a_frame_event_keeps_its_payload_out_of_repr() -> None:
    assert "secret" not in repr(FrameReceived("bob", 1, b"secret"))


def _meeting(tmp_path: Path, **kwargs: Any) -> MeetingClient:
    """A meeting client of a device whose keystore is filled in (nothing is sent)."""
    from sealroom.crypto.signing import SigningKey

    sdk = Client("http://k", jwt=str, secret=BasicSplitTrust(bytes), keystore=tmp_path / "d")
    sdk.ks.user_id, sdk.ks.device_id, sdk.ks.signing_key = "uma", "dev-u", SigningKey.generate()
    return MeetingClient(sdk, "http://conf", MeetingConfig("m", host="uma"), **kwargs)


def test_handlers_by_type_and_the_iterator_see_the_same_events(tmp_path: Path) -> None:
    async def run() -> None:
        mc = _meeting(tmp_path)
        keys: list[KeyInstalled] = []
        everything: list[MeetingEvent] = []
        done = asyncio.Event()

        async def later(event: Rekeyed) -> None:
            done.set()

        mc.on(KeyInstalled, keys.append)
        mc.on(MeetingEvent, everything.append)
        mc.on(Rekeyed, later)
        await mc._do(Notify(KeyInstalled(0, "start")))
        await mc._do(Notify(Rekeyed(1, "join")))
        await asyncio.wait_for(done.wait(), 1)
        assert keys == [KeyInstalled(0, "start")]
        assert everything == [KeyInstalled(0, "start"), Rekeyed(1, "join")]
        seen = []
        async for event in mc.events():
            seen.append(event)
            if len(seen) == 2:
                break
        assert seen == everything
        with pytest.raises(TimeoutError):
            await mc.next_event(timeout=0.01)

        mc.off(KeyInstalled, keys.append)
        await mc._do(Notify(KeyInstalled(5, "start")))
        assert keys == [KeyInstalled(0, "start")]
        await mc.sdk.aclose()

    asyncio.run(run())


def test_a_failing_handler_is_logged_and_the_others_still_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> list[MeetingEvent]:
        mc = _meeting(tmp_path, queue_events=False)
        got: list[MeetingEvent] = []

        def broken(event: MeetingEvent) -> None:
            raise ValueError("application bug")

        mc.on(Joined, broken)
        mc.on(Joined, got.append)
        await mc._do(Notify(Joined()))
        assert mc._events.empty()  # queue_events=False: only the handlers
        await mc.sdk.aclose()
        return got

    with caplog.at_level(logging.ERROR, logger="sealroom.sdk.meeting"):
        assert asyncio.run(run()) == [Joined()]
    assert "a handler of joined failed" in caplog.text


def test_wrong_arguments_are_type_errors(tmp_path: Path) -> None:
    async def run() -> None:
        mc = _meeting(tmp_path)
        with pytest.raises(TypeError, match="MeetingEvent type"):
            mc.on("joined", print)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="user id"):
            await mc.remove(b"bob")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key_provider"):
            _meeting(tmp_path, key_provider=object())
        with pytest.raises(TypeError, match="Client"):
            MeetingClient("sdk", "http://c", MeetingConfig("m", host="u"))  # type: ignore[arg-type]
        await mc.sdk.aclose()

    asyncio.run(run())


def test_a_call_the_meeting_state_does_not_allow_is_a_meeting_state_error(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        mc = _meeting(tmp_path)
        with pytest.raises(MeetingStateError):
            await mc.end()  # not the manager: it never started
        with pytest.raises(MeetingStateError):
            await mc.admit("bob")
        await mc.sdk.aclose()

    asyncio.run(run())


class Recorder(KeyProvider):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def set_key(self, key: SenderKey) -> None:
        self.calls.append(("set_key", key))

    def set_send_key(self, key: SenderKey) -> None:
        self.calls.append(("set_send_key", key))

    def retire_epoch(self, epoch: int) -> None:
        self.calls.append(("retire_epoch", epoch))


def test_key_export_hands_out_the_keys_sealroom_itself_sends_with(tmp_path: Path) -> None:
    async def run() -> None:
        provider = Recorder()
        mc = _meeting(tmp_path, key_provider=provider, grace_seconds=0.05, switch_delay=0.05)
        mc.session.roster = ["bob", "uma"]
        sk = bytes(range(32))
        mc._install(InstallMediaKey(3, sk))
        keys = [c[1] for c in provider.calls if c[0] == "set_key"]
        assert [(k.sender, k.index, k.kid, k.own) for k in keys] == [
            ("bob", 0, 3 << 16, False),
            ("uma", 1, 3 << 16 | 1, True),
        ]
        assert all(k.base_key == sender_base_key(sk, 3, k.index, k.suite) for k in keys)
        sends = [c[1] for c in provider.calls if c[0] == "set_send_key"]
        assert sends == [keys[1]]  # the first key: sent with at once

        # Frames Sealroom's own sender makes open with the exported key in any RFC 9605
        # implementation, and the other way round.
        assert mc._sender is not None
        rfc = SFrameContext(keys[1].suite)
        rfc.add_decrypt_key(keys[1].kid, keys[1].base_key)
        assert rfc.decrypt(b"", mc._sender.encrypt(b"", b"frame")) == b"frame"
        assert isinstance(mc._sender, Sender)

        # A fresh key (not a ratchet): sent with after the switch delay; the old epoch is
        # retired after the grace period.
        provider.calls.clear()
        mc._install(InstallMediaKey(5, bytes(32)))
        assert [c[0] for c in provider.calls] == ["set_key", "set_key"]
        await asyncio.sleep(0.2)
        assert [c[0] for c in provider.calls[2:]] == ["set_send_key", "retire_epoch"] or [
            c[0] for c in provider.calls[2:]
        ] == ["retire_epoch", "set_send_key"]
        assert ("retire_epoch", 3) in provider.calls

        # The end: everything left is retired at once.
        provider.calls.clear()
        mc.session.state = "ended"
        await mc._do(RetireMediaKeys((5,)))
        assert provider.calls == [("retire_epoch", 5)]
        await mc.sdk.aclose()

    asyncio.run(run())


def test_a_sender_keys_repr_leaves_the_key_out() -> None:
    key = SenderKey(1, "bob", 0, 1 << 16, b"\x01" * 32, 4)
    assert "base_key" not in repr(key)
    assert repr(b"\x01" * 32) not in repr(key)


def test_the_events_end_when_the_client_is_closed(tmp_path: Path) -> None:
    async def run() -> None:
        mc = _meeting(tmp_path)
        await mc._do(Notify(Left()))
        await mc.close()
        await mc.close()  # twice is harmless
        assert [event async for event in mc.events()] == [Left()]
        assert [event async for event in mc.events()] == []  # a second reader ends too
        with pytest.raises(MeetingStateError, match="closed"):
            await mc.next_event(timeout=1)
        await mc.sdk.aclose()

    asyncio.run(run())
