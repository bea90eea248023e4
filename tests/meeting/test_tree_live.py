"""Large-meeting mode (the key tree) between real clients on real services: joiners open
the path the manager sealed to their device without the key service, and after a leave the
others derive the fresh key from the tree, while the leaver, keeping every key it held,
cannot."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from sealroom.api.encoding import b64d
from sealroom.errors import DecryptionError, MalformedInputError
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import Joined, KeyInstalled, Rekeyed
from tests.live_meeting import TIMING, Person, running_services

TREE = dataclasses.replace(TIMING, tree_threshold=1, ratchet_interval=3600.0)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from running_services(tmp_path_factory)


def _record_tree_parts(p: Person) -> dict[int, dict[int, bytes]]:
    """Every ``tree`` part ``p`` receives, by epoch (the session forgets them once used)."""
    assert p.mc is not None
    seen: dict[int, dict[int, bytes]] = {}
    session = p.mc.session
    handle = session._on_tree_part

    def record(m: BoardMessage) -> Any:
        seen.setdefault(int(m.body["epoch"]), {})[int(m.body["part"])] = b64d(m.body["wraps"])
        return handle(m)

    session._on_tree_part = record  # type: ignore[method-assign]
    return seen


async def _meeting(servers: dict[str, str]) -> None:
    config = MeetingConfig("bigroom", host="uma", invitees=("bob", "carl", "dina"))
    uma, bob, carl, dina = (Person(servers, u, config) for u in ("uma", "bob", "carl", "dina"))
    try:
        await (await uma.enter(TREE)).start()
        await uma.wait(KeyInstalled)
        for p in (bob, carl, dina):
            await (await p.enter(TREE)).join()
            await p.wait(Joined)
        for p in (bob, carl, dina):
            assert p.mc is not None
            assert p.mc.session._path is not None
            # The key reached the joiner in its sealed path: no transform at the service.
            assert "open_envelope" not in p.ops
            assert "open_path" in p.ops
        await carl.frames_from(bob, b"before the leave")
        parts = _record_tree_parts(bob)
        assert dina.mc is not None
        assert dina.mc.session._path is not None
        kept = dina.mc.session._path.copy()  # the leaver keeps what it held
        before = bob.epoch() or 0
        for p in (bob, carl):
            p.ops.clear()
        await dina.mc.leave()
        fresh = await bob.wait(Rekeyed, reason="leave")
        await carl.wait(Rekeyed, reason="leave")
        epoch = fresh.epoch
        assert epoch > before
        for p in (bob, carl):  # derived from the tree: nobody asked the key service
            assert "open_envelope" not in p.ops, p.ops
        assert bob.mc is not None
        assert carl.mc is not None
        assert uma.mc is not None
        assert bob.mc.session._sk == carl.mc.session._sk == uma.mc.session._sk
        await carl.frames_from(bob, b"after the leave")
        # The leaver, with every key it held, cannot unwrap the fresh key.
        wraps = [parts[epoch][i] for i in sorted(parts.get(epoch, {}))]
        assert wraps, "a leave replaces the leaver's path: there are wraps"
        try:
            derived = kept.apply(wraps, epoch)
        except (DecryptionError, MalformedInputError):
            derived = None
        assert derived != bob.mc.session._sk
    finally:
        for p in (uma, bob, carl, dina):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_a_leave_in_a_large_meeting_is_keyed_through_the_tree(servers: dict[str, str]) -> None:
    asyncio.run(asyncio.wait_for(_meeting(servers), 120))
