"""A base for secret values: redacted ``repr``, unhashable, exported only by name."""

from __future__ import annotations

import hmac
from typing import NoReturn


class Secret:
    """Holds secret bytes. ``repr`` is redacted; hashing and pickling are refused.

    The only way to get the bytes back is :meth:`expose_secret_bytes`, so that every
    place that handles raw key material says so in the code.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = bytes(secret)

    def expose_secret_bytes(self) -> bytes:
        """Return the raw secret. Callers take responsibility for where it goes."""
        return self._secret

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [redacted]>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")

    def __len__(self) -> int:
        return len(self._secret)
