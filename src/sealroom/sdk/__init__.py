"""The client SDK, in one import: ``from sealroom.sdk import Client, MeetingClient, ...``.

- :class:`Client` (async, on httpx) and :class:`SyncClient`: a device of a user against the
  key service (users, devices, groups, documents and streams).
- :class:`MeetingClient`, :class:`MeetingConfig`, :class:`Timing` and the meeting events
  (:mod:`sealroom.sdk.events`): a device in a meeting.
- :class:`KeyProvider` and :class:`SenderKey`: the media keys, for an application's own
  SFrame stack.
- :class:`Envelope`, :class:`Target` and the typed results; the SDK's errors.

See docs/sdk.md.
"""

from sealroom.crypto.envelope import Envelope
from sealroom.errors import DecryptionError, SealroomError
from sealroom.meeting.session import MeetingConfig, Timing
from sealroom.sdk.authorship import OpenedDocument, OpenedStream, Sealer
from sealroom.sdk.client import BasicSplitTrust, Client, Password
from sealroom.sdk.errors import (
    AuthorshipError,
    KeyChangedError,
    KeyChangedWarning,
    KeystoreError,
    MeetingStateError,
    NetworkError,
    SdkError,
    ServiceRefusedError,
)
from sealroom.sdk.events import (
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
    MeetingEvent,
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
from sealroom.sdk.keyexport import KeyProvider, SenderKey
from sealroom.sdk.meeting import MeetingClient
from sealroom.sdk.resources import AuditReport, Device, Grant, GroupInfo, Target
from sealroom.sdk.sync import SyncClient

__all__ = [
    "AddFailed",
    "AuditReport",
    "AuthorshipError",
    "BadMessage",
    "BasicSplitTrust",
    "BoardLost",
    "ChannelClosed",
    "ChannelError",
    "Client",
    "DecryptionError",
    "DecryptionFailed",
    "Device",
    "DeviceRotated",
    "Ended",
    "Envelope",
    "FrameReceived",
    "Grant",
    "GroupInfo",
    "HandoverFailed",
    "InternalError",
    "Joined",
    "KeyChangedError",
    "KeyChangedWarning",
    "KeyInstalled",
    "KeyProvider",
    "KeyRegistrationFailed",
    "KeyUnavailable",
    "KeystoreError",
    "Knock",
    "Left",
    "ManagementContested",
    "ManagementLost",
    "ManagerChanged",
    "MeetingClient",
    "MeetingConfig",
    "MeetingEvent",
    "MeetingFailed",
    "MeetingStateError",
    "MembershipMismatch",
    "NetworkError",
    "NotAdmitted",
    "OpenedDocument",
    "OpenedStream",
    "ParticipantLeft",
    "Password",
    "ReconcileFailed",
    "Reconnected",
    "Rekeyed",
    "RemovalFailed",
    "Retrying",
    "RosterFork",
    "RosterGap",
    "RosterRecovered",
    "RosterUnknown",
    "SdkError",
    "Sealer",
    "SealroomError",
    "SenderKey",
    "ServiceRefusedError",
    "Superseded",
    "SyncClient",
    "Target",
    "Timing",
    "Unmanaged",
]
