"""Key-service settings: a documented dataclass, read from ``SEALROOM_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

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
    #: Where ``sealroom keyservice`` listens.
    host: str = "127.0.0.1"
    port: int = 8470
    workers: int = 1
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"SEALROOM_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            if f.name in ("max_body_bytes", "port", "workers"):
                values[f.name] = int(raw)
            elif f.name in ("secrets_file", "jwks_file", "web_root"):
                values[f.name] = Path(raw)
            elif f.name in ("auditors", "cors_origins"):
                values[f.name] = tuple(a for a in raw.split(",") if a)
            else:
                values[f.name] = raw
        settings = cls(**values)  # type: ignore[arg-type]
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
