"""Attacks on who is in a meeting, against the real IdP, key service and conferencing
service on 127.0.0.1 (issue 9, attacks 1 and 2; docs/threat-model.md).

* A removed participant tries to come back after the manager changed (the late host took
  over, or an admin succeeded the manager).
* An admin who is not the manager tries to slip an accomplice into the meeting group at the
  key service, directly or by claiming the group first, so that the accomplice (who never
  announces itself) opens a later session key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from sealroom.crypto.envelope import Envelope
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import (
    Ended,
    Joined,
    KeyInstalled,
    Knock,
    ManagementContested,
    Rekeyed,
    ServiceRefusedError,
    Target,
)
from tests.live_meeting import TIMING, Person, newest_envelope, running_services

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True, params=["seed", "tree"])
def key_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every attack here runs without the key tree and with it from the first participant
    (large-meeting mode): a removal, a ban or an accomplice must fail in both."""
    if request.param == "tree":
        monkeypatch.setattr(Person, "timing", dataclasses.replace(TIMING, tree_threshold=1))
    return str(request.param)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from running_services(tmp_path_factory)


def _config() -> MeetingConfig:
    return MeetingConfig(f"m-{uuid.uuid4().hex[:12]}", host="hana", invitees=("bob",))


async def _close(*people: Person) -> None:
    for p in people:
        if p.mc is not None:
            await p.mc.close()
        await p.sdk.aclose()


async def _comes_back_and_is_refused(bob: Person, manager: Person) -> None:
    """Bob (removed) joins again from a fresh client: it knocks, and opens nothing."""
    await (await bob.enter()).join()
    await manager.wait(Knock, user="bob")
    await asyncio.sleep(2.5)  # longer than every join retry (0.2, 0.5, 1, 1 s)
    assert bob.epoch() is None
    assert bob.mc is not None
    assert "bob" not in bob.mc.session.roster
    assert manager.mc is not None
    assert "bob" not in manager.mc.session.roster
    with pytest.raises(ServiceRefusedError, match="not_member"):
        await bob.sdk.decrypt_unmanaged(
            Envelope.from_bytes(newest_envelope(manager)), 0, Target.group(bob.config.meeting_id)
        )
    group = await manager.sdk.group(bob.config.meeting_id)
    assert "bob" in (group.banned or [])
    assert "bob" not in (group.members or [])


async def _removed_invitee_after_late_host(servers: dict[str, str]) -> None:
    config = _config()
    uma, bob, hana = (Person(servers, u, config) for u in ("uma", "bob", "hana"))
    try:
        await hana.sdk.initialize()
        await (await uma.enter()).start()
        await uma.wait(KeyInstalled)
        await (await bob.enter()).join()
        await bob.wait(Joined)
        assert uma.mc is not None
        await uma.mc.remove("bob")  # U0, the manager, removes the invitee
        await bob.wait(Ended)
        await uma.wait(Rekeyed, reason="leave")
        await bob.mc.close()  # type: ignore[union-attr]
        await (await hana.enter()).join()  # the late host takes the meeting over
        await hana.wait(Joined)
        await uma.wait(Rekeyed, reason="takeover")
        await _comes_back_and_is_refused(bob, hana)
        # Until someone with the right admits it again: then it is in.
        assert hana.mc is not None
        await hana.mc.admit("bob")
        await bob.wait(Joined)
        assert bob.epoch() == hana.epoch()
    finally:
        await _close(uma, bob, hana)


def test_removed_participant_cannot_rejoin_after_the_late_host_takes_over(
    servers: dict[str, str],
) -> None:
    asyncio.run(_removed_invitee_after_late_host(servers))


async def _removed_invitee_after_successor(servers: dict[str, str]) -> None:
    config = _config()
    uma, bob, hana = (Person(servers, u, config) for u in ("uma", "bob", "hana"))
    try:
        await (await uma.enter()).start()
        await uma.wait(KeyInstalled)
        await (await hana.enter()).join()
        await uma.wait(Rekeyed, reason="takeover")
        await (await bob.enter()).join()
        await bob.wait(Joined)
        assert hana.mc is not None
        await hana.mc.remove("bob")  # the host removes the invitee, then leaves
        await bob.wait(Ended)
        await uma.wait(Rekeyed, reason="leave")
        await bob.mc.close()  # type: ignore[union-attr]
        await hana.mc.leave()
        await uma.wait(Rekeyed, reason="takeover")  # uma, an admin, succeeds
        await _comes_back_and_is_refused(bob, uma)
    finally:
        await _close(uma, bob, hana)


def test_removed_participant_cannot_rejoin_after_an_admin_succeeds_the_manager(
    servers: dict[str, str],
) -> None:
    asyncio.run(_removed_invitee_after_successor(servers))


async def _accomplice(servers: dict[str, str], *, claim: bool) -> None:
    config = _config()
    uma, bob, hana, mal = (Person(servers, u, config) for u in ("uma", "bob", "hana", "mal"))
    meeting = config.meeting_id
    try:
        await mal.sdk.initialize()
        await (await uma.enter()).start()
        await uma.wait(KeyInstalled)
        await (await hana.enter()).join()  # the host manages; uma is an admin, no more
        await uma.wait(Rekeyed, reason="takeover")
        await (await bob.enter()).join()
        await bob.wait(Joined)
        # uma slips mal into the meeting group behind the manager's back.
        refusal: str | None = None
        try:
            await uma.sdk.add_member(meeting, "mal")
        except ServiceRefusedError as exc:
            refusal = exc.code
        if claim and refusal is not None:  # the loud way: claim the group, then add mal
            assert await uma.sdk.claim_group_management(meeting) == "hana"
            await uma.sdk.add_member(meeting, "mal")
        assert hana.mc is not None
        await hana.mc.remove("uma")  # then uma is removed; a fresh key follows
        await bob.wait(Rekeyed, reason="leave")
        fresh = Envelope.from_bytes(newest_envelope(hana))
        with pytest.raises(ServiceRefusedError, match="not_member"):
            await mal.sdk.decrypt_unmanaged(fresh, 0, Target.group(meeting))
        group = await hana.sdk.group(meeting)
        assert set(group.members or []) == {"hana", "bob"}
        assert group.manager == "hana"
        assert refusal == "not_manager"  # the key service refused the non-manager outright
        if claim:  # and the manager heard that its group had been claimed
            await hana.wait(ManagementContested, timeout=5.0)
    finally:
        await _close(uma, bob, hana, mal)


def test_non_manager_admin_cannot_add_an_accomplice_to_the_meeting_group(
    servers: dict[str, str],
) -> None:
    asyncio.run(_accomplice(servers, claim=False))


def test_accomplice_slipped_in_by_a_claiming_admin_never_opens_a_later_key(
    servers: dict[str, str],
) -> None:
    asyncio.run(_accomplice(servers, claim=True))
