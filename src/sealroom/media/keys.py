"""Sealroom's SFrame key schedule, senders and receivers.

Each sender's base key and KID come from the session key SK_n, the sender's index and the
epoch n (docs/meetings.md, the media layer)::

    KID       = n << 16 | index          (n < 2^32, index < 2^16)
    base_key  = HKDF-SHA256(SK_n, info = label ‖ n ‖ index ‖ suite)

so two senders, or two epochs, never share a key, and a sender's counter makes each nonce
under its key unique. :class:`Sender` owns its counter and refuses to go past its limit
(:class:`CounterExhaustedError`: rekey first). :class:`Receiver` installs an epoch as soon as it
has its key, keeps the previous one for a grace period, rejects replayed and too-old
counters with a sliding window per KID, and reports a failure as :class:`FrameRejectedError`
with the KID and sender index but not the reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.errors import SealroomError
from sealroom.media.sframe import (
    CIPHER_SUITES,
    COPY_LIMIT,
    SFrameError,
    _Key,
    aead_decrypt,
    aead_encrypt,
    decode_header,
    header_table,
)

__all__ = [
    "DEFAULT_SUITE",
    "LABEL",
    "MAX_EPOCH",
    "MAX_SENDERS",
    "SESSION_KEY_BYTES",
    "CounterExhaustedError",
    "FrameRejectedError",
    "Receiver",
    "ReplayWindow",
    "Sender",
    "kid_for",
    "sender_base_key",
    "split_kid",
]

LABEL: Final[bytes] = b"sealroom/v1/media/sframe-base-key"
DEFAULT_SUITE: Final[int] = 4  # AES_128_GCM_SHA256_128
MAX_EPOCH: Final[int] = (1 << 32) - 1
MAX_SENDERS: Final[int] = 1 << 16
SESSION_KEY_BYTES: Final[int] = 32


class CounterExhaustedError(SealroomError):
    """This sender has used every counter its key allows; it needs a new epoch."""


class FrameRejectedError(SealroomError):
    """A frame did not decrypt. Names the KID and sender, never the reason."""

    def __init__(self, kid: int | None, sender: int | None, epoch: int | None) -> None:
        super().__init__(f"frame rejected (kid={kid}, sender={sender}, epoch={epoch})")
        self.kid, self.sender, self.epoch = kid, sender, epoch


def kid_for(epoch: int, sender: int) -> int:
    if not (0 <= epoch <= MAX_EPOCH and 0 <= sender < MAX_SENDERS):
        raise ValueError("epoch must fit 32 bits and the sender index 16 bits")
    return epoch << 16 | sender


def split_kid(kid: int) -> tuple[int, int]:
    """(epoch, sender index) of a KID."""
    return kid >> 16, kid & 0xFFFF


def sender_base_key(
    session_key: bytes, epoch: int, sender: int, suite: int = DEFAULT_SUITE
) -> bytes:
    if len(session_key) != SESSION_KEY_BYTES:
        raise ValueError("a session key is 32 bytes")
    kid_for(epoch, sender)
    info = LABEL + struct.pack(">IHH", epoch, sender, suite)
    return HKDF(hashes.SHA256(), 32, None, info).derive(session_key)


class Sender:
    """One participant's sending side in one epoch. Owns its counter."""

    def __init__(
        self,
        session_key: bytes,
        epoch: int,
        index: int,
        *,
        suite: int = DEFAULT_SUITE,
        max_frames: int = 1 << 32,
    ) -> None:
        self.epoch, self.index, self.kid = epoch, index, kid_for(epoch, index)
        self._suite = CIPHER_SUITES[suite]
        self._key = _Key(self._suite, self.kid, sender_base_key(session_key, epoch, index, suite))
        self._salt, self._gcm = self._key.salt, self._key.gcm
        self._small, self._extended = header_table(self.kid)
        self._next = 0
        self._limit = min(max_frames, 1 << 64)

    @property
    def frames_sent(self) -> int:
        return self._next

    def encrypt(self, metadata: bytes, plaintext: bytes) -> bytes:
        # The per-frame path: written flat, since its overhead is what bench/media.py measures.
        ctr = self._next
        if ctr >= self._limit:
            raise CounterExhaustedError(f"sender {self.index} used all {self._limit} counters")
        self._next = ctr + 1
        if ctr < 8:
            header = self._small[ctr]
        else:
            n = (ctr.bit_length() + 7) >> 3
            header = self._extended[n] + ctr.to_bytes(n, "big")
        nonce = (self._salt ^ ctr).to_bytes(12, "big")
        gcm = self._gcm
        if gcm is not None:
            return header + gcm.encrypt(nonce, plaintext, header + metadata)
        return header + aead_encrypt(self._suite, self._key, nonce, header + metadata, plaintext)


class ReplayWindow:
    """Accepts each counter once: anything at or below ``highest - size`` is too old."""

    __slots__ = ("_bits", "_highest", "_mask", "size")

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._mask = (1 << size) - 1
        self._highest = -1
        self._bits = 0  # bit i set: counter (highest - i) was seen

    def check(self, ctr: int) -> bool:
        """Would ``ctr`` be accepted? Does not record it."""
        if ctr > self._highest:
            return True
        offset = self._highest - ctr
        return offset < self.size and not (self._bits >> offset) & 1

    def accept(self, ctr: int) -> None:
        if ctr > self._highest:
            shift = ctr - self._highest
            self._bits = 1 if shift >= self.size else ((self._bits << shift) | 1) & self._mask
            self._highest = ctr
        else:
            self._bits |= 1 << (self._highest - ctr)


@dataclass
class _Epoch:
    epoch: int
    session_key: bytes
    retire_at: float | None = None
    senders: int = MAX_SENDERS
    windows: dict[int, ReplayWindow] = field(default_factory=dict)


class Receiver:
    """Decrypts every other sender's frames for the epochs it holds keys for."""

    def __init__(
        self, *, suite: int = DEFAULT_SUITE, grace_seconds: float = 2.0, window: int = 1024
    ) -> None:
        self._suite_id = suite
        self._suite = CIPHER_SUITES[suite]
        self._grace = grace_seconds
        self._window = window
        self._kids: dict[int, tuple[_Key, ReplayWindow]] = {}
        self._epochs: dict[int, _Epoch] = {}
        self._next_expiry = float("inf")

    @property
    def epochs(self) -> list[int]:
        return sorted(self._epochs)

    def install(
        self, epoch: int, session_key: bytes, now: float, senders: int = MAX_SENDERS
    ) -> None:
        """Start accepting epoch ``epoch`` from sender indices below ``senders``; older
        epochs get ``grace_seconds`` more."""
        if len(session_key) != SESSION_KEY_BYTES:
            raise ValueError("a session key is 32 bytes")
        for old in self._epochs.values():
            if old.epoch < epoch and old.retire_at is None:
                old.retire_at = now + self._grace
                self._next_expiry = min(self._next_expiry, old.retire_at)
        self._epochs.setdefault(epoch, _Epoch(epoch, session_key, senders=senders))
        self.expire(now)

    def retire(self, epoch: int) -> None:
        """Drop an epoch's keys at once (e.g. at meeting end)."""
        state = self._epochs.pop(epoch, None)
        if state is not None:
            for kid in state.windows:
                self._kids.pop(kid, None)

    def expire(self, now: float) -> None:
        for e in [
            e for e, s in self._epochs.items() if s.retire_at is not None and s.retire_at <= now
        ]:
            self.retire(e)

    def decrypt(self, metadata: bytes, frame: bytes, now: float) -> tuple[int, int, bytes]:
        """(epoch, sender index, plaintext), or FrameRejectedError."""
        if now >= self._next_expiry:
            self.expire(now)
        first = frame[0] if frame else 0
        if first & 0x88 == 0x88:  # the usual shape: extended KID and CTR, parsed inline
            kid_end = ((first >> 4) & 7) + 2
            header_len = kid_end + (first & 7) + 1
            if len(frame) < header_len or frame[1] == 0 or frame[kid_end] == 0:
                raise FrameRejectedError(None, None, None)
            kid = int.from_bytes(frame[1:kid_end], "big")
            ctr = int.from_bytes(frame[kid_end:header_len], "big")
            if kid < 8 or ctr < 8:
                raise FrameRejectedError(None, None, None)
        else:
            try:
                kid, ctr, header_len = decode_header(frame)
            except SFrameError:
                raise FrameRejectedError(None, None, None) from None
        entry = self._kids.get(kid)
        if entry is None:
            entry = self._key_for(kid)
        key, window = entry
        # ReplayWindow.check and .accept, inlined: this runs once per received frame.
        highest = window._highest
        if ctr <= highest and (
            highest - ctr >= window.size or (window._bits >> (highest - ctr)) & 1
        ):
            raise FrameRejectedError(kid, kid & 0xFFFF, kid >> 16)
        nonce = (key.salt ^ ctr).to_bytes(12, "big")
        aad = frame[:header_len] + metadata
        try:
            if key.gcm is not None:
                body = (
                    frame[header_len:]
                    if len(frame) < COPY_LIMIT
                    else memoryview(frame)[header_len:]
                )
                plaintext = key.gcm.decrypt(nonce, body, aad)
            else:
                plaintext = aead_decrypt(self._suite, key, nonce, aad, frame[header_len:])
        except (InvalidTag, SFrameError):
            raise FrameRejectedError(kid, kid & 0xFFFF, kid >> 16) from None
        if ctr > highest:
            shift = ctr - highest
            window._bits = (
                1 if shift >= window.size else ((window._bits << shift) | 1) & window._mask
            )
            window._highest = ctr
        else:
            window._bits |= 1 << (highest - ctr)
        return kid >> 16, kid & 0xFFFF, plaintext

    def _key_for(self, kid: int) -> tuple[_Key, ReplayWindow]:
        epoch, sender = split_kid(kid)
        state = self._epochs.get(epoch)
        if state is None or sender >= state.senders:  # no key derived for strangers
            raise FrameRejectedError(kid, sender, epoch)
        base = sender_base_key(state.session_key, epoch, sender, self._suite_id)
        window = ReplayWindow(self._window)
        state.windows[kid] = window
        entry = self._kids[kid] = (_Key(self._suite, kid, base), window)
        return entry
