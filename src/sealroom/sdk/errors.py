"""SDK errors and warnings."""

from __future__ import annotations

from sealroom import errors
from sealroom.errors import SealroomError
from sealroom.sdk.authorship import Sealer

__all__ = [
    "AuthorshipError",
    "KeyChangedError",
    "KeyChangedWarning",
    "KeystoreError",
    "MeetingStateError",
    "NetworkError",
    "SdkError",
    "ServiceRefusedError",
]


class SdkError(SealroomError):
    """Base of the SDK's own errors."""


class ServiceRefusedError(SdkError):
    """The key service refused a call; ``code`` is its stable error code."""

    def __init__(self, code: str, status: int, detail: str) -> None:
        super().__init__(f"{code} ({status}): {detail}")
        self.code, self.status, self.detail = code, status, detail


class NetworkError(SdkError):
    """A service could not be reached, or did not answer in time (after the retries an
    idempotent call gets). The underlying httpx exception is its ``__cause__``."""


class KeystoreError(SdkError, PermissionError):
    """The keystore file cannot be used as it is (readable by others)."""


class MeetingStateError(SdkError, errors.MeetingStateError):
    """A meeting call that the meeting's state does not allow: starting or joining twice,
    or a manager's call (remove, admit, end) from a device that does not manage it."""


class KeyChangedWarning(UserWarning):
    """A pinned public key changed. The application should ask the user to verify it."""


class KeyChangedError(SdkError):
    """A pinned key changed and the application did not accept the change."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"the pinned key of {subject} changed; verify it out of band")
        self.subject = subject


class AuthorshipError(SdkError):
    """Content whose authorship does not hold; nothing of it was released.

    Either a device of someone other than the owner sealed it (``sealer`` names that device;
    pass ``any_sealer=True`` to accept such content and show who sealed it), or the key
    service named an owner other than the user whose device granted the key (``sealer`` is
    None then).
    """

    def __init__(self, message: str, *, owner: str, sealer: Sealer | None = None) -> None:
        super().__init__(message)
        self.owner, self.sealer = owner, sealer
