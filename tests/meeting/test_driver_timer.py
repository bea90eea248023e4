"""The asyncio driver's wake-ups: one batch of actions may ask for several times."""

from __future__ import annotations

import asyncio

from sealroom.sdk.meeting import MeetingClient


def test_the_driver_keeps_the_earliest_wake_up() -> None:
    async def run() -> None:
        mc = MeetingClient.__new__(MeetingClient)  # only the timer state is needed here
        mc._loop, mc._timer, mc._tasks = asyncio.get_running_loop(), None, set()
        now = mc._loop.time()
        mc._schedule(now + 2)  # e.g. a registration retry...
        mc._schedule(now + 300)  # ...then the ratchet timer, asked for in the same batch
        assert mc._timer is not None
        assert mc._timer.when() == now + 2
        mc._schedule(now + 1)
        assert mc._timer.when() == now + 1
        mc._timer.cancel()

    asyncio.run(run())
