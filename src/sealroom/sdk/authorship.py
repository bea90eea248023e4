"""Who sealed what: the typed results of opening a document, a stream or a message.

Every recipient of a sealed object knows its DEK, so any of them can seal other content under
the same object id and sign it with its own device. A signature therefore says only *which*
device sealed; whether that is the right one is the opener's question. The SDK answers it:
each result names its :class:`Sealer`, checked through the device certificate chained to the
sealer's pinned user key, and by default the sealer must be a device of the object's
``owner`` (see :class:`~sealroom.sdk.errors.AuthorshipError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OpenedDocument", "OpenedStream", "Sealer"]


@dataclass(frozen=True, slots=True)
class Sealer:
    """The device that signed a sealed object, and the user that certified that device."""

    #: The user whose pinned key signed the device's certificate.
    user_id: str
    #: The device, as named in that certificate.
    device_id: str


@dataclass(frozen=True, slots=True)
class OpenedDocument:
    """An opened document or message: its plaintext, who sealed it, and whose it is."""

    #: The plaintext (left out of ``repr``, so that logging a result logs no content).
    data: bytes = field(repr=False)
    #: The device that sealed it.
    sealer: Sealer
    #: The owner: the user whose device made the key that reached this device. For a
    #: managed document only the owner may grant, so this is the document's owner; for an
    #: unmanaged message it is whoever made its keys.
    owner: str


@dataclass(frozen=True, slots=True)
class OpenedStream:
    """An opened stream (a recording, a file) written to the caller's output."""

    #: Plaintext bytes written.
    size: int
    #: The device that sealed it.
    sealer: Sealer
    #: The owner, as for :class:`OpenedDocument`.
    owner: str
