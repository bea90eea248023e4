"""Key-service settings: a documented dataclass, read from ``SEALROOM_*`` variables.

The variables, flags and defaults are the rows of :data:`sealroom.config.TABLE` whose
names are these fields; where to listen and how many workers are the command line's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sealroom import config
from sealroom.api.origins import normalize_origin

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Everything the key service needs; each field has a ``SEALROOM_<NAME>`` variable."""

    #: ``sqlite:///path.db`` (default, one file, WAL) or ``postgresql://…[?schema=name]``.
    database_url: str = "sqlite:///sealroom-keyservice.db"
    #: The service's signing key and at-rest master key (created, mode 0600, if missing).
    secrets_file: Path = Path("sealroom-keyservice-secrets.json")
    #: The identity provider: issuer, and exactly one of a JWKS URL or file.
    jwt_issuer: str = "sealroom-dev-idp"
    jwks_url: str | None = None
    jwks_file: Path | None = None
    #: Tokens must name this audience.
    jwt_audience: str = "sealroom-keyservice"
    #: Largest accepted request body, in bytes.
    max_body_bytes: int = 1 << 20
    #: Users allowed to read audit entries (everyone authenticated may verify the chain).
    auditors: tuple[str, ...] = ()
    #: Web origins (``https://app.example.com``) whose pages may call the API from a browser
    #: (CORS); any other origin is refused. The service's own origin is always allowed.
    cors_origins: tuple[str, ...] = ()
    #: A folder of static files (the web client) to serve under ``/web/``; none by default.
    web_root: Path | None = None
    #: Requests a second one user may keep up, per worker process; beyond it
    #: ``429 rate_limited`` with ``Retry-After`` (anonymous requests count by address).
    rate_limit: float = 20.0
    #: Requests one user may make at once before ``rate_limit`` applies.
    rate_burst: int = 200
    #: Requests a second from one client address, before authentication, per worker: a
    #: bound on junk (many users behind one proxy or NAT share it, so it is higher).
    address_rate_limit: float = 200.0
    address_rate_burst: int = 2000
    #: Transforms computed at once per worker process (pairings hold the GIL, so more would
    #: interleave rather than add; measured in ``bench/keyservice.py --overload``).
    transform_concurrency: int = 1
    #: Transforms that may wait per worker process; beyond it ``503 overloaded``. Small, so
    #: that under overload the admitted ones finish about as fast as without load.
    transform_queue: int = 2
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``SEALROOM_*`` variables (:class:`sealroom.config.ConfigError`
        names a bad one)."""
        return cls.from_config(config.resolve("keyservice", None, environ))

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Settings:
        """The settings from :func:`sealroom.config.resolve`'s values."""
        names = {f.name for f in fields(cls)} - {"extra"}
        settings = cls(**{k: v for k, v in values.items() if k in names})
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings (for worker processes)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None:
                continue
            out[f"SEALROOM_{f.name.upper()}"] = (
                ",".join(value) if isinstance(value, tuple) else str(value)
            )
        return out

    def validate(self) -> None:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("set exactly one of SEALROOM_JWKS_URL or SEALROOM_JWKS_FILE")
        if not 1024 <= self.max_body_bytes <= 64 << 20:
            raise ValueError("max_body_bytes must be between 1 KiB and 64 MiB")
        for origin in self.cors_origins:
            normalize_origin(origin)  # ValueError names a malformed entry
        if self.web_root is not None and not self.web_root.is_dir():
            raise ValueError(f"web_root {self.web_root} is not a folder")
        if (
            min(self.rate_limit, self.address_rate_limit) <= 0
            or min(self.rate_burst, self.address_rate_burst) < 1
        ):
            raise ValueError("rate_limit must be above 0 and rate_burst at least 1")
        if self.transform_concurrency < 1 or self.transform_queue < 0:
            raise ValueError("transform_concurrency >= 1 and transform_queue >= 0")
