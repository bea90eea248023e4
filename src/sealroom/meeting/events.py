"""The events of a meeting, one frozen type each: the meeting core notifies most of them
(``Notify(event)``), the :class:`~sealroom.sdk.meeting.MeetingClient` adds its channel's and
frames', and reports them all to the application.

Every event derives from :class:`MeetingEvent`. Read them with ``async for event in
meeting.events()``, or register a handler per type with ``meeting.on(KeyInstalled, f)``
(``meeting.on(MeetingEvent, f)`` receives every event). ``match`` works on them::

    match event:
        case FrameReceived(sender=sender, payload=payload): ...
        case Rekeyed(epoch=epoch, reason=reason): ...

Error strings (``error`` fields) are the key service's stable error codes (for example
``not_found``, ``banned``, ``not_manager``), ``unreachable`` when the key service could not
be reached, or ``sdk:<ErrorType>`` when a check in this SDK failed. No event carries key
material except :class:`FrameReceived`'s decrypted payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

__all__ = [
    "EVENT_TYPES",
    "AddFailed",
    "BadMessage",
    "BoardLost",
    "ChannelClosed",
    "ChannelError",
    "DecryptionFailed",
    "DeviceRotated",
    "Ended",
    "FrameReceived",
    "HandoverFailed",
    "InternalError",
    "Joined",
    "KeyInstalled",
    "KeyRegistrationFailed",
    "KeyUnavailable",
    "Knock",
    "Left",
    "ManagementContested",
    "ManagementLost",
    "ManagerChanged",
    "MeetingEvent",
    "MeetingFailed",
    "MembershipMismatch",
    "NotAdmitted",
    "ParticipantLeft",
    "ReconcileFailed",
    "Reconnected",
    "Rekeyed",
    "RemovalFailed",
    "Retrying",
    "RosterFork",
    "RosterGap",
    "RosterRecovered",
    "RosterUnknown",
    "Superseded",
    "Unmanaged",
]


@dataclass(frozen=True)
class MeetingEvent:
    """Base of every meeting event; ``name`` is the event's stable name (``key_installed``)."""

    name: ClassVar[str] = ""


# --- joining, leaving, ending ---------------------------------------------------------------


@dataclass(frozen=True)
class Joined(MeetingEvent):
    """This device is in the meeting.

    ``as_manager``: it joined as (or became, arriving late) the meeting's manager.
    ``epoch``: the key epoch it joined at, when it joined by opening a session key (None
    when it started the meeting or took it over).
    """

    name: ClassVar[str] = "joined"

    as_manager: bool = False
    epoch: int | None = None


@dataclass(frozen=True)
class NotAdmitted(MeetingEvent):
    """The key service would not open the meeting's key for this device: it was neither
    invited nor admitted. ``error``: the key service's code."""

    name: ClassVar[str] = "not_admitted"

    error: str | None


@dataclass(frozen=True)
class Left(MeetingEvent):
    """This device left the meeting (after :meth:`MeetingClient.leave`)."""

    name: ClassVar[str] = "left"


@dataclass(frozen=True)
class Ended(MeetingEvent):
    """The meeting is over for this device: a manager ended it, or it was superseded. All
    media keys are retired."""

    name: ClassVar[str] = "ended"


@dataclass(frozen=True)
class Superseded(MeetingEvent):
    """The same user joined again from another device (``device``); this one steps aside
    (an :class:`Ended` follows)."""

    name: ClassVar[str] = "superseded"

    device: str


@dataclass(frozen=True)
class MeetingFailed(MeetingEvent):
    """Starting the meeting failed: the key-service call ``op`` (``create_group``) was
    refused with ``error``. The meeting is over for this device."""

    name: ClassVar[str] = "failed"

    op: str
    error: str | None


@dataclass(frozen=True)
class DeviceRotated(MeetingEvent):
    """After leaving or the end, this device's keys were replaced (forward secrecy);
    ``device`` is its new device id."""

    name: ClassVar[str] = "device_rotated"

    device: str


# --- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInstalled(MeetingEvent):
    """This device holds its first media key: epoch ``epoch``, made for ``reason``
    (``start``, ``join``, ``leave``, ``timer``, ``takeover``)."""

    name: ClassVar[str] = "key_installed"

    epoch: int
    reason: str


@dataclass(frozen=True)
class Rekeyed(MeetingEvent):
    """A new media key replaced the previous one: epoch ``epoch``, made for ``reason`` (as
    in :class:`KeyInstalled`)."""

    name: ClassVar[str] = "rekeyed"

    epoch: int
    reason: str


@dataclass(frozen=True)
class KeyUnavailable(MeetingEvent):
    """A posted session key of ``epoch`` could not be opened (``error``); media of that
    epoch stays unreadable here until a later key arrives."""

    name: ClassVar[str] = "key_unavailable"

    epoch: int
    error: str | None


@dataclass(frozen=True)
class KeyRegistrationFailed(MeetingEvent):
    """Manager: the key service would not register the key of ``epoch`` (``error``); it is
    tried again in ``retry_in`` seconds while the meeting stays on its current key."""

    name: ClassVar[str] = "key_registration_failed"

    epoch: int
    error: str | None
    retry_in: float


@dataclass(frozen=True)
class MembershipMismatch(MeetingEvent):
    """Manager: the meeting group's members are not who this device let in; it checks
    them and takes strangers out before registering the key of ``epoch`` again."""

    name: ClassVar[str] = "membership_mismatch"

    epoch: int


# --- media --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameReceived(MeetingEvent):
    """A media frame that decrypted: from user ``sender`` (None if the roster of its epoch
    is unknown here), in key epoch ``epoch``; ``payload`` is the plaintext."""

    name: ClassVar[str] = "frame"

    sender: str | None
    epoch: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class DecryptionFailed(MeetingEvent):
    """A media frame did not decrypt. ``kid``: its SFrame KID (None if its header did not
    parse); ``sender_index``: the sender index in that KID; ``sender``: that sender's user
    id when the roster of its epoch is known here. The reason is never given."""

    name: ClassVar[str] = "decryption_failed"

    kid: int | None
    sender: str | None = None
    sender_index: int | None = None


# --- participants and management ------------------------------------------------------------


@dataclass(frozen=True)
class Knock(MeetingEvent):
    """Manager: ``user`` asks to join but was neither invited nor admitted (``banned``: it
    was removed earlier). Let it in with :meth:`MeetingClient.admit`."""

    name: ClassVar[str] = "knock"

    user: str
    banned: bool = False


@dataclass(frozen=True)
class ParticipantLeft(MeetingEvent):
    """``user`` left the meeting, or was removed."""

    name: ClassVar[str] = "participant_left"

    user: str


@dataclass(frozen=True)
class ManagerChanged(MeetingEvent):
    """``user`` manages the meeting now (a handover or a takeover)."""

    name: ClassVar[str] = "manager"

    user: str


@dataclass(frozen=True)
class Unmanaged(MeetingEvent):
    """The manager ``manager`` left and nobody present may manage the meeting: there are no
    more rekeys. The application should end the meeting."""

    name: ClassVar[str] = "unmanaged"

    manager: str


@dataclass(frozen=True)
class AddFailed(MeetingEvent):
    """Manager: ``user`` could not be added to the meeting group (``error``)."""

    name: ClassVar[str] = "add_failed"

    user: str
    error: str | None


@dataclass(frozen=True)
class RemovalFailed(MeetingEvent):
    """Manager: taking ``user`` out of the meeting group failed (``error``) for the
    ``attempt``-th time; it is retried, and the fresh key waits for it."""

    name: ClassVar[str] = "removal_failed"

    user: str
    error: str | None
    attempt: int


@dataclass(frozen=True)
class HandoverFailed(MeetingEvent):
    """Manager leaving: making ``user`` an admin to hand over to failed (``error``)."""

    name: ClassVar[str] = "handover_failed"

    user: str
    error: str | None


@dataclass(frozen=True)
class ReconcileFailed(MeetingEvent):
    """Manager: listing the meeting group's members failed (``error``), for the
    ``attempt``-th time; it is retried."""

    name: ClassVar[str] = "reconcile_failed"

    error: str | None
    attempt: int


@dataclass(frozen=True)
class ManagementContested(MeetingEvent):
    """Manager: another admin claimed the meeting group (the key service refused ``op``);
    this device claims it back and checks whom the other let in."""

    name: ClassVar[str] = "management_contested"

    op: str


@dataclass(frozen=True)
class ManagementLost(MeetingEvent):
    """Manager: claiming the meeting group back failed (``error``)."""

    name: ClassVar[str] = "management_lost"

    error: str | None


# --- the roster ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterFork(MeetingEvent):
    """The key post of ``epoch`` does not extend the roster chain this device holds: it is
    not used. A sign of a misbehaving manager (or a bug); worth showing."""

    name: ClassVar[str] = "roster_fork"

    epoch: int


@dataclass(frozen=True)
class RosterGap(MeetingEvent):
    """Key epochs between ``from_epoch`` and ``to_epoch`` were skipped here."""

    name: ClassVar[str] = "roster_gap"

    from_epoch: int
    to_epoch: int


@dataclass(frozen=True)
class RosterUnknown(MeetingEvent):
    """The roster of ``epoch`` is unknown here: it was asked for (frames meanwhile carry no
    sender names, and this device does not send)."""

    name: ClassVar[str] = "roster_unknown"

    epoch: int


@dataclass(frozen=True)
class RosterRecovered(MeetingEvent):
    """The roster of ``epoch`` arrived; its media keys were installed again with it."""

    name: ClassVar[str] = "roster_recovered"

    epoch: int


# --- the channel --------------------------------------------------------------------------


@dataclass(frozen=True)
class BadMessage(MeetingEvent):
    """A board message was dropped. ``device``: its poster, when known; ``why``: which check
    it failed, when the meeting core says; ``error``: the exception type or ``not JSON``
    when it did not parse."""

    name: ClassVar[str] = "bad_message"

    device: str | None = None
    why: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ChannelError(MeetingEvent):
    """The conferencing service refused something (see docs/sdk.md's table of codes):
    ``code``, ``detail``, and ``retry_after`` seconds when rate limited."""

    name: ClassVar[str] = "channel_error"

    code: str
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class ChannelClosed(MeetingEvent):
    """The channel closed with WebSocket close ``code`` and ``reason``; it reconnects unless
    the code says it cannot help (4400, 4401, 4403, 4410) or the meeting is over."""

    name: ClassVar[str] = "channel_closed"

    code: int | None
    reason: str


@dataclass(frozen=True)
class BoardLost(MeetingEvent):
    """The service lost the meeting's board (close code 4410): join again."""

    name: ClassVar[str] = "board_lost"


@dataclass(frozen=True)
class Reconnected(MeetingEvent):
    """The channel is back, resuming the board after position ``after``."""

    name: ClassVar[str] = "reconnected"

    after: str | None


@dataclass(frozen=True)
class Retrying(MeetingEvent):
    """A key-service call, or the first connection to the channel, failed transiently; it
    is tried again in ``delay`` seconds."""

    name: ClassVar[str] = "retrying"

    delay: float


@dataclass(frozen=True)
class InternalError(MeetingEvent):
    """A step of the meeting client failed on a bug (the exception type in ``error``, the
    traceback in the ``sealroom.meeting`` log); the meeting may need to be joined again."""

    name: ClassVar[str] = "internal_error"

    error: str


#: Every event type, by its ``name``.
EVENT_TYPES: Final[dict[str, type[MeetingEvent]]] = {
    cls.name: cls
    for cls in (
        AddFailed,
        BadMessage,
        BoardLost,
        ChannelClosed,
        ChannelError,
        DecryptionFailed,
        DeviceRotated,
        Ended,
        FrameReceived,
        HandoverFailed,
        InternalError,
        Joined,
        KeyInstalled,
        KeyRegistrationFailed,
        KeyUnavailable,
        Knock,
        Left,
        ManagementContested,
        ManagementLost,
        ManagerChanged,
        MeetingFailed,
        MembershipMismatch,
        NotAdmitted,
        ParticipantLeft,
        ReconcileFailed,
        Reconnected,
        Rekeyed,
        RemovalFailed,
        Retrying,
        RosterFork,
        RosterGap,
        RosterRecovered,
        RosterUnknown,
        Superseded,
        Unmanaged,
    )
}
