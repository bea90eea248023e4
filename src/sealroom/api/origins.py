"""Which web origins may use a service from a browser (the key service's CORS, the
conference channel's WebSocket ``Origin`` check).

An origin is ``scheme://host[:port]`` exactly as browsers send it in the ``Origin`` header
(lower case, no path, the default port left out). A request without an ``Origin`` header
is not from a browser page (or is a same-origin navigation) and is judged by its
credentials alone; one that carries an origin must be listed, or be the service's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["OriginPolicy", "normalize_origin", "own_origin"]

_ORIGIN: Final = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
_DEFAULT_PORTS: Final[dict[str, str]] = {"http": "80", "https": "443"}


def normalize_origin(text: str) -> str:
    """The serialized form of an origin; ValueError for anything that is not one."""
    m = _ORIGIN.fullmatch(text.strip().lower().rstrip("/"))
    if m is None:
        raise ValueError(f"not a web origin (scheme://host[:port]): {text!r}")
    scheme, host, port = m.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"bad port in origin {text!r}")
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def own_origin(scheme: str, headers: Mapping[str, str]) -> str | None:
    """The origin a request was addressed to (its scheme and Host header), if well formed."""
    web_scheme = {"http": "http", "ws": "http", "https": "https", "wss": "https"}.get(scheme)
    host = headers.get("host")
    if web_scheme is None or not host:
        return None
    try:
        return normalize_origin(f"{web_scheme}://{host}")
    except ValueError:
        return None


class OriginPolicy:
    """The configured origins, plus (if ``allow_own``) the service's own origin."""

    def __init__(self, origins: Iterable[str], *, allow_own: bool = True) -> None:
        self.origins: frozenset[str] = frozenset(normalize_origin(o) for o in origins)
        self.allow_own = allow_own

    def allows(self, origin: str, own: str | None) -> bool:
        if origin in self.origins:
            return True
        return self.allow_own and own is not None and origin == own
