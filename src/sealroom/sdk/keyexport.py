"""Key export: Sealroom for keys alone, with the application's own SFrame and media stack.

Pass a :class:`KeyProvider` as ``MeetingClient(..., key_provider=...)``. For every key
epoch the meeting reaches, the client hands it one :class:`SenderKey` per sender in that
epoch's roster (the SFrame ``base_key`` and ``KID`` of RFC 9605 §4.4, derived as in
:mod:`sealroom.media.keys`), then says which of them this device sends with, and when an
epoch's keys must be dropped. This is the role of LiveKit's external E2EE key provider:
the SFU, the WebRTC pipeline and the frame encryption stay the application's own.

An SFrame implementation that follows RFC 9605 needs nothing else: register each key with
``add_decrypt_key(kid, base_key)``, the one from :meth:`KeyProvider.set_send_key` with
``add_encrypt_key``, and use cipher suite ``suite``. Base keys are secrets: keep them out
of logs (their ``repr`` leaves them out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["KeyProvider", "SenderKey"]


@dataclass(frozen=True)
class SenderKey:
    """One sender's SFrame key in one key epoch.

    ``epoch``: the key epoch (the meeting's session key number). ``sender``: the user id
    of the participant who sends with it. ``index``: its position in that epoch's roster.
    ``kid``: the SFrame key id, ``epoch << 16 | index``. ``base_key``: the SFrame base key
    (32 bytes) for ``kid``. ``suite``: the SFrame cipher suite (RFC 9605 §4.5; 4 is
    AES_128_GCM_SHA256_128). ``own``: this device's own sending key.
    """

    epoch: int
    sender: str
    index: int
    kid: int
    base_key: bytes = field(repr=False)
    suite: int
    own: bool = False


@runtime_checkable
class KeyProvider(Protocol):
    """What the application implements to receive the media keys. Every method is called
    on the meeting client's event loop and must not block it."""

    def set_key(self, key: SenderKey) -> None:
        """Accept frames under ``key.kid`` from now on (called for every sender of an
        epoch, this device included, as soon as the epoch's key is known)."""

    def set_send_key(self, key: SenderKey) -> None:
        """Encrypt this device's frames with ``key`` from now on (a moment after the
        epoch's keys arrived, so that the others have them before its first frame)."""

    def retire_epoch(self, epoch: int) -> None:
        """Drop every key of ``epoch``: a newer epoch's grace period passed, or the meeting
        is over for this device. Frames under its KIDs must no longer decrypt."""
