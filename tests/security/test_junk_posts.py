"""A stranger with a token fills the board with posts from invented devices, to make every
joiner hammer the key service (issue 9, "a joiner's look-ups"), against the real services."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from sealroom.crypto.signing import SigningKey
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import Joined, KeyInstalled
from sealroom.sdk.meeting import CONFERENCE_AUDIENCE, MAX_UNKNOWN_DEVICES_PER_USER
from tests.live_meeting import Person, running_services

pytestmark = pytest.mark.timeout(180)
JUNK = 200


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from running_services(tmp_path_factory)


async def _flood(servers: dict[str, str], stranger: Person, meeting: str) -> None:
    """Post JUNK announces, each from a device nobody registered, signed by a fresh key."""
    url = servers["conf"].replace("http", "ws", 1) + f"/v1/meetings/{meeting}/channel"
    token = stranger.token(CONFERENCE_AUDIENCE)
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        for i in range(JUNK):
            m = BoardMessage.create(
                SigningKey.generate(),
                meeting=meeting,
                kind="announce",
                user=stranger.user,
                device=f"junk-{i}",
                seq=1,
                body={},
            )
            await ws.send(json.dumps({"type": "post", "message": json.loads(m.to_json())}))
        await asyncio.sleep(0.5)


async def _joiner_lookups(servers: dict[str, str]) -> None:
    config = MeetingConfig(f"m-{uuid.uuid4().hex[:12]}", host="uma", invitees=("bob",))
    uma, bob, eve = (Person(servers, u, config) for u in ("uma", "bob", "eve"))
    try:
        await (await uma.enter()).start()
        await uma.wait(KeyInstalled)
        await eve.sdk.initialize()
        await _flood(servers, eve, config.meeting_id)
        lookups: list[str] = []
        call = bob.sdk._call

        async def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            if path.startswith("/v1/devices/"):
                lookups.append(path)
            return await call(method, path, *args, **kwargs)

        bob.sdk._call = counting  # type: ignore[method-assign]
        await (await bob.enter()).join()
        await bob.wait(Joined)
        await asyncio.sleep(0.5)
        junk = [p for p in lookups if "junk-" in p]
        assert len(junk) <= MAX_UNKNOWN_DEVICES_PER_USER, len(junk)
        # Besides: uma's device, its own, and the sealer of the key it opened (by its key).
        assert len(lookups) <= MAX_UNKNOWN_DEVICES_PER_USER + 3, lookups
    finally:
        for p in (uma, bob, eve):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_junk_device_ids_on_the_board_cost_a_joiner_a_bounded_number_of_lookups(
    servers: dict[str, str],
) -> None:
    asyncio.run(_joiner_lookups(servers))
