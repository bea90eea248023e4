"""SDK errors and warnings."""

from __future__ import annotations

from sealroom.errors import SealroomError

__all__ = ["KeyChangedError", "KeyChangedWarning", "SdkError", "ServiceRefusedError"]


class SdkError(SealroomError):
    """Base of the SDK's own errors."""


class ServiceRefusedError(SdkError):
    """The key service refused a call; ``code`` is its stable error code."""

    def __init__(self, code: str, status: int, detail: str) -> None:
        super().__init__(f"{code} ({status}): {detail}")
        self.code, self.status, self.detail = code, status, detail


class KeyChangedWarning(UserWarning):
    """A pinned public key changed. The application should ask the user to verify it."""


class KeyChangedError(SdkError):
    """A pinned key changed and the application did not accept the change."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"the pinned key of {subject} changed; verify it out of band")
        self.subject = subject
