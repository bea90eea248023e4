"""Sealroom's exception tree. Every public error derives from :class:`SealroomError`.

::

    SealroomError
    ├── MalformedInputError      bytes that are not a valid encoding (wrong version, length,
    │                            tag, a point off the curve or outside the prime-order subgroup)
    ├── DecryptionError          any failure to decrypt or authenticate; deliberately opaque
    ├── SignatureError           a signature that does not verify against the pinned signer
    ├── WrongSecretError         an escrow blob opened with the wrong password or secret
    ├── CryptoInvariantError     an internal check failed (a bug or a broken backend)
    ├── SdkError                 the client SDK's (sealroom.sdk.errors; docs/sdk.md)
    ├── SFrameError, FrameRejectedError, CounterExhaustedError     media (sealroom.media)
    ├── ServiceError, StorageError, ModelError                     the key service
    ├── BoardRefusedError, BoardLostError                          the conferencing service
    └── ConfigError, OverloadedError                               configuration, load shedding

A test checks that every public exception class of the package is in this tree.

No message ever contains key material, plaintext or a secret.
"""

from __future__ import annotations

__all__ = [
    "CryptoInvariantError",
    "DecryptionError",
    "MalformedInputError",
    "MeetingStateError",
    "SealroomError",
    "SignatureError",
    "WrongSecretError",
]


class SealroomError(Exception):
    """Base class of every error Sealroom raises on purpose."""


class MalformedInputError(SealroomError, ValueError):
    """Input bytes are not a valid encoding of the expected object."""


class DecryptionError(SealroomError):
    """Decryption or authentication failed. The cause is deliberately not given."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class MeetingStateError(SealroomError, RuntimeError):
    """A meeting command the protocol's state does not allow: starting or joining twice, or
    a manager's command (remove, admit, end) on a device that does not manage the meeting.
    Nothing changed."""


class SignatureError(SealroomError):
    """A signature is invalid, or was made by a signer other than the pinned one."""


class WrongSecretError(SealroomError):
    """An escrow blob was opened with the wrong password or split secret."""


class CryptoInvariantError(SealroomError):
    """An internal consistency check failed; this indicates a bug or a broken backend."""
