"""Real participants for tests against real services on 127.0.0.1: the IdP, the key
service and the conferencing service run as processes (:class:`Services`); each person uses
the SDK and the asyncio meeting client. Time is compressed (debounce 0.5 s, ratchet every
4 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sealroom.api.encoding import b64d
from sealroom.demo.services import Services
from sealroom.idp import PROVIDER_AUDIENCE
from sealroom.meeting.session import KeyServiceCall
from sealroom.sdk import (
    BasicSplitTrust,
    Client,
    FrameReceived,
    MeetingClient,
    MeetingConfig,
    MeetingEvent,
    Timing,
)

E = TypeVar("E", bound=MeetingEvent)

TIMING = Timing(join_retry_delays=(0.2, 0.5, 1.0, 1.0), leave_debounce=0.5, ratchet_interval=4.0)


def running_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The three services for a module's tests (use it in a module-scoped fixture)."""
    tmp = tmp_path_factory.mktemp("meeting")
    services = Services(tmp)
    try:
        yield {"idp": services.idp, "ks": services.ks, "conf": services.conf, "tmp": str(tmp)}
    finally:
        services.stop()


class Person:
    def __init__(self, servers: dict[str, str], user: str, config: MeetingConfig) -> None:
        idp = servers["idp"]
        self.user = user

        def token(audience: str) -> str:
            r = httpx.post(f"{idp}/v1/token", json={"user_id": user, "audience": audience})
            return str(r.json()["token"])

        def half() -> bytes:
            r = httpx.post(
                f"{idp}/v1/escrow-half",
                headers={"authorization": "Bearer " + token(PROVIDER_AUDIENCE)},
            )
            return b64d(r.json()["half"])

        self.sdk = Client(
            servers["ks"],
            jwt=token,
            secret=BasicSplitTrust(half),
            keystore=Path(servers["tmp"]) / user / "device.json",
        )
        self.token, self.config, self.conf = token, config, servers["conf"]
        self.seen: list[MeetingEvent] = []
        self.mc: MeetingClient | None = None

    #: The timing ``enter`` uses unless given one (a test module may set it, e.g. to run
    #: with the key tree from the first participant).
    timing: Timing = TIMING

    async def enter(self, timing: Timing | None = None) -> MeetingClient:
        await self.sdk.initialize()
        timing = timing or self.timing
        self.mc = MeetingClient(
            self.sdk, self.conf, self.config, token=self.token, timing=timing, switch_delay=0.2
        )
        self.ops: list[str] = []  # the session's calls through the SDK, in order
        call = self.mc._key_service

        async def recorded(c: KeyServiceCall) -> tuple[dict[str, Any] | None, str | None]:
            self.ops.append(c.op)
            return await call(c)

        self.mc._key_service = recorded  # type: ignore[method-assign]
        return self.mc

    async def wait(
        self, kind: type[E], timeout: float = 30.0, after_epoch: int | None = None, **match: Any
    ) -> E:
        """The next event of type ``kind`` whose fields equal ``match`` (and, with
        ``after_epoch``, a later epoch: a timer ratchet may have fired between two steps)."""
        assert self.mc is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await self.mc.next_event(timeout=max(remaining, 0.01))
            self.seen.append(event)
            if (
                isinstance(event, kind)
                and all(getattr(event, k) == v for k, v in match.items())
                and (after_epoch is None or event.epoch > after_epoch)
            ):
                return event

    async def frames_from(self, sender: Person, payload: bytes) -> None:
        """Publish until the payload arrives here from ``sender`` (keys may be switching)."""
        assert sender.mc is not None
        for _ in range(50):
            await sender.mc.publish(payload)
            try:
                await self.wait(FrameReceived, timeout=0.2, sender=sender.user, payload=payload)
                return
            except TimeoutError:
                continue
        raise AssertionError(f"{self.user} never got a frame from {sender.user}")

    def epoch(self) -> int | None:
        assert self.mc is not None
        return self.mc.session.epoch


def newest_envelope(p: Person) -> bytes:
    """The newest session-key envelope on the board, as ``p`` saw it."""
    assert p.mc is not None
    return p.mc.session.last_envelope
