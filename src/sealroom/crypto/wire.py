"""Exact-length binary encoding helpers shared by every wire format.

Every object starts with a version byte and a type tag. Readers consume exactly the bytes
they are given: a short read, an unknown version or tag, or trailing bytes raise
:class:`~sealroom.errors.MalformedInputError` naming the object and the lengths.
"""

from __future__ import annotations

from typing import Final

from sealroom.errors import MalformedInputError

WIRE_VERSION: Final[int] = 1

# Type tags, one per object kind. Never reuse a retired value.
TAG_PUBLIC_KEY: Final[int] = 0x01
TAG_PRIVATE_KEY: Final[int] = 0x02
TAG_VERIFYING_KEY: Final[int] = 0x03
TAG_SIGNING_KEY: Final[int] = 0x04
TAG_ENCRYPTED_VALUE: Final[int] = 0x11
TAG_TRANSFORM_KEY: Final[int] = 0x21
TAG_ENVELOPE: Final[int] = 0x41
TAG_ESCROW: Final[int] = 0x51
TAG_STREAM: Final[int] = 0x61


def header(tag: int) -> bytes:
    """The two leading bytes of an object: version, then tag."""
    return bytes((WIRE_VERSION, tag))


class Reader:
    """Reads fields from a byte string and insists on consuming all of it."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedInputError(f"{what}: expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    def expect_header(self, tag: int) -> None:
        version, got_tag = self.take(1)[0], self.take(1)[0]
        if version != WIRE_VERSION:
            raise MalformedInputError(f"{self._what}: unsupported version {version}")
        if got_tag != tag:
            raise MalformedInputError(f"{self._what}: wrong type tag 0x{got_tag:02x}")

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise MalformedInputError(
                f"{self._what}: truncated, needed {end} bytes, got {len(self._data)}"
            )
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def consumed(self) -> bytes:
        """Everything read so far (for signatures over a prefix)."""
        return self._data[: self._pos]

    def finish(self) -> None:
        extra = len(self._data) - self._pos
        if extra:
            raise MalformedInputError(
                f"{self._what}: expected {self._pos} bytes, got {len(self._data)}"
            )


def u16(value: int) -> bytes:
    if not 0 <= value < 1 << 16:
        raise MalformedInputError("length does not fit in 16 bits")
    return value.to_bytes(2, "big")


def u32(value: int) -> bytes:
    if not 0 <= value < 1 << 32:
        raise MalformedInputError("length does not fit in 32 bits")
    return value.to_bytes(4, "big")
