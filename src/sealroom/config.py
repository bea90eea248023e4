"""One table of settings for every service: ``serve``, ``keyservice``, ``conference``, ``idp``.

Each setting has one environment variable (``SEALROOM_<NAME>``), one command-line flag (and,
for a few, a shorter alias inside one command, such as ``keyservice --port``), a default
and a parser. A flag overrides the variable, which overrides the default. A value that does
not parse, or a combination that cannot work (no JWKS at all, two of them, a JWKS file that
is missing), is a :class:`ConfigError` naming the setting; the command line prints it as one
line and exits 2, before anything starts. docs/operations.md shows this table
(:func:`markdown_table`), and a test keeps the two equal.

This module imports nothing from the services: they read the values it resolves.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from sealroom.errors import SealroomError

__all__ = [
    "SERVICES",
    "TABLE",
    "ConfigError",
    "Setting",
    "add_arguments",
    "given_flags",
    "markdown_table",
    "resolve",
    "setting",
]

#: The commands that read settings from this table.
SERVICES: Final[tuple[str, ...]] = ("serve", "keyservice", "conference", "idp")


class ConfigError(SealroomError, ValueError):
    """A setting is missing, malformed or contradicts another; ``setting`` names it."""

    def __init__(self, setting: Setting, message: str) -> None:
        super().__init__(f"{setting.env} ({setting.flag}): {message}")
        self.setting = setting


def _text(raw: str) -> str:
    return raw


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("empty path")
    return Path(raw)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL")
        return value

    return parse


def _database_url(raw: str) -> str:
    value = raw.strip()
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return value
    if value.startswith(("postgresql://", "postgres://")):
        return value
    raise ValueError("expected sqlite:///path.db or postgresql://…")


_ID: Final = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _prefix(raw: str) -> str:
    if not _PREFIX.fullmatch(raw):
        raise ValueError("1-64 characters of [A-Za-z0-9_-] (a Redis key and NATS subject part)")
    return raw


def _user_id(raw: str) -> str:
    if not _ID.fullmatch(raw):
        raise ValueError(f"not a user id: {raw!r}")
    return raw


_ORIGIN: Final = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")


def _origin(raw: str) -> str:
    if not _ORIGIN.fullmatch(raw.strip().lower().rstrip("/")):
        raise ValueError(f"not a web origin (scheme://host[:port]): {raw!r}")
    return raw.strip()


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    name: str
    services: frozenset[str]
    default: Any
    help: str
    parse: Callable[[str], Any] = _text
    #: A list: the flag may repeat; the variable separates values with commas.
    many: bool = False
    #: The flag's name when it differs from ``--name-with-dashes`` (``--auditor`` for a list).
    flag_name: str | None = None
    #: Shorter flags inside one command: ``{"keyservice": "--port"}``.
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: A switch: the flag takes no value (``--no-web``); the variable is ``1``/``0``.
    switch: bool = False

    @property
    def env(self) -> str:
        return "SEALROOM_" + self.name.upper()

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    def shown_default(self) -> str:
        if self.default is None or self.default == ():
            return "none"
        if self.switch:
            return "off"
        return str(self.default)


_KS = frozenset({"serve", "keyservice"})
_CONF = frozenset({"serve", "conference"})
_BOTH = frozenset({"serve", "keyservice", "conference"})
_ALL = frozenset(SERVICES)
_ONE_DAY = 86400

#: Every setting, in the order docs/operations.md lists them.
TABLE: Final[tuple[Setting, ...]] = (
    # where to listen
    Setting("host", _ALL, "127.0.0.1", "listen address of every service"),
    Setting(
        "keyservice_port",
        _KS,
        8470,
        "the key service's port",
        _int(1, 65535),
        aliases={"keyservice": "--port"},
    ),
    Setting(
        "conference_port",
        _CONF,
        8472,
        "the conferencing service's port",
        _int(1, 65535),
        aliases={"conference": "--port"},
    ),
    Setting(
        "idp_port",
        frozenset({"idp"}),
        8471,
        "the development IdP's port",
        _int(1, 65535),
        aliases={"idp": "--port"},
    ),
    Setting(
        "workers",
        _KS,
        1,
        "key-service worker processes (uvicorn); set PROMETHEUS_MULTIPROC_DIR to keep "
        "/metrics whole across them (see docs/operations.md)",
        _int(1, 64),
    ),
    Setting(
        "forwarded_allow_ips",
        _BOTH,
        None,
        "comma-separated addresses of the proxies whose X-Forwarded-For is believed "
        "(the client address that rate limits count by); none: the peer address",
        many=True,
    ),
    # identity
    Setting(
        "jwks_url",
        _BOTH,
        None,
        "the IdP's JWKS URL (exactly one of this or jwks_file)",
        _url("http", "https"),
    ),
    Setting(
        "jwks_file",
        _BOTH,
        None,
        "the IdP's JWKS as a file (exactly one of this or jwks_url)",
        _path,
    ),
    Setting(
        "jwt_issuer",
        _ALL,
        "sealroom-dev-idp",
        "the issuer tokens must name (the IdP's own issuer for `idp`)",
        aliases={"idp": "--issuer"},
    ),
    Setting("jwt_audience", _KS, "sealroom-keyservice", "the key service's token audience"),
    Setting(
        "conference_audience",
        _CONF,
        "sealroom-conference",
        "the conferencing service's token audience",
    ),
    # key service
    Setting(
        "database_url",
        _KS,
        "sqlite:///sealroom-keyservice.db",
        "sqlite:///file.db or postgresql://…[?schema=name]",
        _database_url,
    ),
    Setting(
        "secrets_file",
        _KS,
        Path("sealroom-keyservice-secrets.json"),
        "the service's signing key and at-rest master key (created 0600 if missing)",
        _path,
    ),
    Setting("max_body_bytes", _KS, 1 << 20, "largest request body, bytes", _int(1024, 64 << 20)),
    Setting(
        "auditors",
        _KS,
        (),
        "users who may read audit entries",
        _user_id,
        many=True,
        flag_name="--auditor",
    ),
    Setting(
        "cors_origins",
        frozenset({"serve", "keyservice", "idp"}),
        (),
        "web origins whose pages may call the key service (and the development IdP)",
        _origin,
        many=True,
        flag_name="--cors-origin",
    ),
    Setting(
        "web_root",
        _KS,
        None,
        "a folder served under /web/ (serve: web/ of a checkout)",
        _path,
    ),
    Setting(
        "no_web", frozenset({"serve"}), False, "serve: do not serve the web client", switch=True
    ),
    Setting(
        "rate_limit",
        _KS,
        20.0,
        "key service: requests a second per user (anonymous ones: per address), per worker; "
        "beyond it 429 with Retry-After",
        _float(0.1, 1e6),
    ),
    Setting(
        "rate_burst", _KS, 200, "key service: requests a user may make at once", _int(1, 10**6)
    ),
    Setting(
        "address_rate_limit",
        _KS,
        200.0,
        "key service: requests a second per client address before authentication, per worker",
        _float(0.1, 1e6),
    ),
    Setting(
        "address_rate_burst",
        _KS,
        2000,
        "key service: requests an address may make at once",
        _int(1, 10**7),
    ),
    Setting(
        "transform_concurrency",
        _KS,
        1,
        "transforms computed at once per worker (pairings hold the GIL: more interleave, not add)",
        _int(1, 256),
    ),
    Setting(
        "transform_queue",
        _KS,
        2,
        "transforms waiting per worker before 503 with Retry-After (a batch counts each "
        "item); more absorbs bursts, fewer keeps latency low under overload",
        _int(0, 100_000),
    ),
    # conferencing service
    Setting(
        "bus", _CONF, "inprocess", "inprocess, redis or nats", _choice("inprocess", "redis", "nats")
    ),
    Setting(
        "redis_url",
        _CONF,
        "redis://127.0.0.1:6379",
        "Redis for --bus redis",
        _url("redis", "rediss"),
    ),
    Setting("nats_url", _CONF, "nats://127.0.0.1:4222", "NATS for --bus nats", _url("nats", "tls")),
    Setting(
        "bus_prefix",
        _CONF,
        "sealroom",
        "key and subject prefix on the broker",
        _prefix,
        aliases={"conference": "--prefix"},
    ),
    Setting(
        "allowed_origins",
        _CONF,
        (),
        "web origins whose pages may open the channel",
        _origin,
        many=True,
        flag_name="--allowed-origin",
    ),
    Setting(
        "connect_rate",
        _CONF,
        20.0,
        "channel handshakes a second per client address; beyond it 429 with Retry-After",
        _float(0.1, 1e6),
    ),
    Setting(
        "connect_burst", _CONF, 1000, "channel handshakes a client may make at once", _int(1, 10**6)
    ),
    Setting("post_rate", _CONF, 50.0, "board posts a second per connection", _float(0.1, 1e6)),
    Setting("post_burst", _CONF, 500, "board posts a connection may make at once", _int(1, 10**6)),
    Setting(
        "board_idle_seconds",
        _CONF,
        3600.0,
        "in-process bus: a board nobody reads is dropped after this",
        _float(1, 30 * _ONE_DAY),
    ),
    Setting(
        "board_max_memory_bytes",
        _CONF,
        256 * 1024 * 1024,
        "in-process bus: board bytes held across all meetings",
        _int(1 << 20, 1 << 40),
    ),
    # development IdP
    Setting(
        "idp_data_dir",
        frozenset({"idp"}),
        Path(".sealroom-idp"),
        "the development IdP's keys and escrow halves",
        _path,
        aliases={"idp": "--data-dir"},
    ),
    # logs
    Setting(
        "log_level",
        _ALL,
        "info",
        "debug, info, warning or error",
        _choice("debug", "info", "warning", "error"),
    ),
    Setting(
        "log_format",
        _ALL,
        "json",
        "json (one object a line) or text",
        _choice("json", "text"),
    ),
)

_BY_NAME: Final[dict[str, Setting]] = {s.name: s for s in TABLE}


def setting(name: str) -> Setting:
    """The table's row for ``name``."""
    return _BY_NAME[name]


def _rows(service: str) -> list[Setting]:
    return [s for s in TABLE if service in s.services]


def add_arguments(parser: argparse.ArgumentParser, service: str) -> None:
    """Add a flag for each setting of ``service``; unset flags stay absent (not defaulted),
    so that :func:`resolve` can tell a flag from the variable and the default."""
    for s in _rows(service):
        names = [s.flag]
        alias = s.aliases.get(service)
        if alias is not None:
            names.insert(0, alias)
        where = f"[{s.env}; default {s.shown_default()}]"
        if s.switch:
            parser.add_argument(
                *names,
                dest=s.name,
                action="store_true",
                default=argparse.SUPPRESS,
                help=f"{s.help} {where}",
            )
        else:
            parser.add_argument(
                *names,
                dest=s.name,
                action="append" if s.many else "store",
                default=argparse.SUPPRESS,
                metavar=s.name.split("_")[-1].upper(),
                help=f"{s.help} {where}",
            )


def given_flags(args: argparse.Namespace, service: str) -> list[str]:
    """The flags that were given on the command line, for ``service``, as argv
    (``serve`` passes its children these and nothing else)."""
    out: list[str] = []
    for s in _rows(service):
        if s.name not in vars(args):
            continue
        value = getattr(args, s.name)
        if s.switch:
            if value:
                out.append(s.flag)
        elif s.many:
            for v in value:
                out += [s.flag, v]
        else:
            out += [s.flag, value]
    return out


def _parse_one(s: Setting, raw: str) -> Any:
    try:
        return s.parse(raw)
    except ValueError as exc:
        raise ConfigError(s, str(exc)) from None


def resolve(
    service: str, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every setting of ``service``: the flag if given, else the variable if set and not
    empty, else the default; parsed and checked. Raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    given = vars(args) if args is not None else {}
    values: dict[str, Any] = {}
    for s in _rows(service):
        if s.name in given:
            raw: Any = given[s.name]
            if s.switch:
                values[s.name] = bool(raw)
            elif s.many:
                values[s.name] = tuple(_parse_one(s, v) for v in _split_all(raw))
            else:
                values[s.name] = _parse_one(s, str(raw))
            continue
        text = env.get(s.env)
        if text is None or text.strip() == "":
            values[s.name] = s.default
        elif s.switch:
            values[s.name] = _switch(s, text)
        elif s.many:
            values[s.name] = tuple(_parse_one(s, v) for v in _split_all([text]))
        else:
            values[s.name] = _parse_one(s, text)
    _check(service, values)
    return values


def _split_all(items: Iterable[str]) -> list[str]:
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def _switch(s: Setting, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(s, f"expected 1 or 0, got {text!r}")


def _check(service: str, values: Mapping[str, Any]) -> None:
    """What no single parser can see: the IdP's keys, files that must exist."""
    if "jwks_url" in values:
        url, path = values["jwks_url"], values["jwks_file"]
        if url is None and path is None:
            raise ConfigError(
                setting("jwks_url"),
                f"not set: give the IdP's keys as {setting('jwks_url').env} or "
                f"{setting('jwks_file').env} (without them every login would fail)",
            )
        if url is not None and path is not None:
            raise ConfigError(
                setting("jwks_url"), f"set only one of it and {setting('jwks_file').env}"
            )
        if path is not None:
            _check_jwks_file(path)
    web_root = values.get("web_root")
    if web_root is not None and not Path(web_root).is_dir():
        raise ConfigError(setting("web_root"), f"{web_root} is not a folder")
    secrets = values.get("secrets_file")
    if secrets is not None:
        _check_secrets_file(Path(secrets))


def _check_jwks_file(path: Path) -> None:
    s = setting("jwks_file")
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(s, f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(s, f"cannot read {path}: {type(exc).__name__}") from None
    except ValueError:
        raise ConfigError(s, f"{path} is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not any(isinstance(k, dict) and "kid" in k for k in keys):
        raise ConfigError(s, f"{path} holds no key with a kid (expected a JWKS)")


def _check_secrets_file(path: Path) -> None:
    s = setting("secrets_file")
    if path.exists():
        if not path.is_file():
            raise ConfigError(s, f"{path} is not a file")
        try:
            size = path.stat().st_size
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(s, f"cannot read {path}: {type(exc).__name__}") from None
        if size == 0:
            raise ConfigError(
                s,
                f"{path} is empty (truncated?): restore it from a backup; a new one would "
                "orphan every key sealed under the old master key",
            )
        return
    parent = path.parent if str(path.parent) else Path()
    if parent.exists() and not os.access(parent, os.W_OK):
        raise ConfigError(s, f"{path} does not exist and {parent} is not writable")


def markdown_table(services: Sequence[str] = SERVICES) -> str:
    """The table as docs/operations.md shows it."""
    lines = [
        "| variable | flag | default | used by | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in TABLE:
        used = ", ".join(x for x in services if x in s.services)
        flags = [f"`{s.flag}`"] + [f"`{a}` ({svc})" for svc, a in s.aliases.items()]
        lines.append(
            f"| `{s.env}` | {', '.join(flags)} | {s.shown_default()} | {used} | "
            f"{s.help.replace('|', '/')} |"
        )
    return "\n".join(lines)
