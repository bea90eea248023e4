"""The ``sealroom`` command."""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import functools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import uvicorn

from sealroom import __version__, config
from sealroom._process import die_with_parent, has_exited, stop_processes
from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.board import BoardLimits
from sealroom.conference.bus import Bus, InProcessBus, NatsBus, RedisBus
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.idp import DevIdp, create_idp_app
from sealroom.keyservice import audit
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.keyservice.settings import Settings
from sealroom.keyservice.storage import StorageError, open_database
from sealroom.ops import logs

# Seconds a stopping service waits for open connections; a client that stopped reading
# would otherwise hold its socket, and the shutdown, open for ever.
GRACEFUL_SHUTDOWN = 5


def _cmd_demo(args: argparse.Namespace) -> int:
    # Video, audio and plotting load only for the demos, so `serve` starts fast; they come
    # with the `demo` extra, which the library and the services do without.
    try:
        from sealroom.demo.meeting import run_demo  # noqa: PLC0415
    except ImportError as exc:
        _fail("demo", f"needs the demo extra ({exc.name}): pip install 'sealroom[demo]'")

    result = run_demo(
        sys.stdout,
        participants=args.participants,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        picture=Path(args.picture),
        browser=args.browser,
    )
    return 0 if result.ok else 1


def _cmd_demo_unwrap(args: argparse.Namespace) -> int:
    from sealroom.demo import unwrap as demo_unwrap  # noqa: PLC0415

    return 0 if demo_unwrap.run(sys.stdout) else 1


def _fail(command: str, message: str) -> NoReturn:
    """One line on stderr and exit status 2: the command cannot start as configured."""
    print(f"sealroom {command}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _resolve(command: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return config.resolve(command, args)
    except config.ConfigError as exc:
        _fail(command, str(exc))


def _serve_children(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, list[str]]:
    """Each child's argv: the flags ``serve`` was given that the child reads, and nothing
    else (the children read the same SEALROOM_* variables themselves), plus the web
    client's root and origin, which ``serve`` works out."""
    cmd = [sys.executable, "-m", "sealroom"]
    keyservice = [*cmd, "keyservice", *config.given_flags(args, "keyservice")]
    conference = [*cmd, "conference", *config.given_flags(args, "conference")]
    web_root = None if values["no_web"] else (values["web_root"] or default_web_root())
    if web_root is not None and values["web_root"] is None:
        keyservice += ["--web-root", str(web_root)]
    if web_root is not None:
        # The web client comes from the key service's origin: the key service needs no CORS
        # for it, and the channel admits that origin (both spellings of a loopback address),
        # with the origins configured (by flag or variable) kept.
        origins = _served_origins(values["host"], values["keyservice_port"])
        conference = _without_flag(conference, "--allowed-origin")
        for origin in [*origins, *values["allowed_origins"]]:
            conference += ["--allowed-origin", origin]
    return {"key service": keyservice, "conferencing service": conference}


def _without_flag(argv: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        else:
            out.append(a)
    return out


def _cmd_serve(args: argparse.Namespace) -> int:
    """The key service and the conferencing service together, for real use.

    SIGTERM, or SIGINT (Ctrl-C) or SIGHUP unless ignored at start, stops both; exit status
    0 then. If either service exits on its own, the other is stopped and the status is 1.
    Each child dies with ``serve`` even if ``serve`` is killed with SIGKILL.
    """
    values = _resolve("serve", args)
    services = _serve_children(args, values)
    # SIGTERM always stops both. So do SIGINT (Ctrl-C) and SIGHUP (the terminal closed),
    # unless this process started with them ignored (a shell's background job, nohup): by
    # Unix convention those stay ignored.
    stop_signals = [signal.SIGTERM]
    for optional in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(optional) is not signal.SIG_IGN:
            stop_signals.append(optional)
    requested: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        requested.append(signum)  # only a note: acted on between steps, never mid-Popen

    previous = {s: signal.signal(s, on_signal) for s in stop_signals}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    me = os.getpid()
    host, ks_port, conf_port = values["host"], values["keyservice_port"], values["conference_port"]
    try:
        for name, argv in services.items():
            if requested:
                break
            # Their own process group: a terminal's Ctrl-C reaches only us, and we stop them.
            # SIGTERM from the kernel if we die, however we die.
            procs[name] = subprocess.Popen(
                argv,
                process_group=0,
                preexec_fn=functools.partial(die_with_parent, me),  # noqa: PLW1509
            )
        if not requested:
            print(
                f"key service on http://{host}:{ks_port}, conferencing "
                f"service on http://{host}:{conf_port} (Ctrl-C stops both)",
                flush=True,
            )
            if "--web-root" in services["key service"] or values["web_root"] is not None:
                print(f"web client on http://{host}:{ks_port}/web/", flush=True)
                print(
                    f"meeting page: http://{host}:{ks_port}/web/meeting.html"
                    f"?conference=ws://{host}:{conf_port}&meeting=MEETING",
                    flush=True,
                )
        while not requested and not any(has_exited(p) for p in procs.values()):
            time.sleep(0.2)
        ended = [name for name, p in procs.items() if has_exited(p)]
    finally:
        stop_processes(procs.values(), groups=True)  # uvicorn's workers with their parent
        for s, handler in previous.items():
            signal.signal(s, handler)
    if requested:
        return 0
    for name in ended:  # the ones that stopped on their own, before we stopped the rest
        print(f"the {name} exited (status {procs[name].returncode}); stopped both", file=sys.stderr)
    return 1


def default_web_root() -> Path | None:
    """The repository's web/ folder, when sealroom runs from a checkout (editable install)."""
    web = Path(__file__).resolve().parents[2] / "web"
    return web if (web / "src" / "index.js").is_file() else None


def _served_origins(host: str, port: int) -> list[str]:
    loopback = {"127.0.0.1", "localhost", "::1"}
    hosts = ["127.0.0.1", "localhost"] if host in loopback else [host]
    return [f"http://{h}:{port}" for h in hosts if h not in ("0.0.0.0", "::")]  # noqa: S104


def _uvicorn_options(command: str, values: dict[str, Any]) -> dict[str, Any]:
    forwarded = values.get("forwarded_allow_ips") or ()
    return {
        "log_config": logs.logging_config(command, values["log_level"], values["log_format"]),
        "log_level": values["log_level"],
        "access_log": False,  # sealroom.access logs each request, with its request id
        "proxy_headers": bool(forwarded),
        "forwarded_allow_ips": ",".join(forwarded) if forwarded else None,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
    }


def _preflight_keyservice(settings: Settings) -> None:
    """Open the database (applying migrations) and the secrets file once, here, so that a
    bad one is one line naming the setting rather than a traceback from every worker."""
    try:
        ServiceKeys.load_or_create(settings.secrets_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(
            "keyservice",
            f"{config.setting('secrets_file').env}: {settings.secrets_file} is not a "
            f"readable Sealroom secrets file ({type(exc).__name__}); restore it from a backup",
        )
    try:
        open_database(settings.database_url).close()
    except (StorageError, psycopg.Error, sqlite3.Error, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if isinstance(exc, StorageError) else ""
        _fail(
            "keyservice",
            f"{config.setting('database_url').env}: cannot open the database "
            f"({type(exc).__name__}{': ' + reason if reason else ''})",
        )


def _metrics_dir(workers: int) -> None:
    """Several workers share /metrics through PROMETHEUS_MULTIPROC_DIR: made fresh when not
    set, emptied of an earlier run's files when it is."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        folder = Path(existing)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
    elif workers > 1:
        folder = Path(tempfile.mkdtemp(prefix="sealroom-metrics-"))
        atexit.register(shutil.rmtree, folder, True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _cmd_keyservice(args: argparse.Namespace) -> int:
    values = _resolve("keyservice", args)
    logs.configure("keyservice", values["log_level"], values["log_format"])
    try:
        settings = Settings.from_config(values)
    except ValueError as exc:
        _fail("keyservice", str(exc))
    _preflight_keyservice(settings)
    _metrics_dir(values["workers"])
    os.environ.update(settings.to_env())  # worker processes read their settings from here
    uvicorn.run(
        "sealroom.keyservice.app:create_app_from_env",
        factory=True,
        host=values["host"],
        port=values["keyservice_port"],
        workers=values["workers"],
        **_uvicorn_options("keyservice", values),
    )
    return 0


def _cmd_idp(args: argparse.Namespace) -> int:
    values = _resolve("idp", args)
    logs.configure("idp", values["log_level"], values["log_format"])
    try:
        idp = DevIdp(Path(values["idp_data_dir"]), issuer=values["jwt_issuer"])
    except (OSError, ValueError) as exc:
        _fail("idp", f"{config.setting('idp_data_dir').env}: {type(exc).__name__}: {exc}")
    host, port = values["host"], values["idp_port"]
    print(f"development IdP (NOT for production) on http://{host}:{port}", flush=True)
    app = create_idp_app(idp, cors_origins=values["cors_origins"])
    uvicorn.run(app, host=host, port=port, **_uvicorn_options("idp", values))
    return 0


def conference_settings(values: dict[str, Any]) -> ConferenceSettings:
    """The conferencing service's settings from :func:`sealroom.config.resolve`'s values."""
    board = dataclasses.replace(
        BoardLimits(),
        idle_seconds=values["board_idle_seconds"],
        max_memory_bytes=values["board_max_memory_bytes"],
    )
    return ConferenceSettings(
        jwt_issuer=values["jwt_issuer"],
        jwt_audience=values["conference_audience"],
        allowed_origins=tuple(values["allowed_origins"]),
        board=board,
        post_rate=values["post_rate"],
        post_burst=values["post_burst"],
        connect_rate=values["connect_rate"],
        connect_burst=values["connect_burst"],
    )


def _cmd_conference(args: argparse.Namespace) -> int:
    values = _resolve("conference", args)
    logs.configure("conference", values["log_level"], values["log_format"])
    jwks = (
        JwksSource(url=values["jwks_url"])
        if values["jwks_url"]
        else JwksSource(path=values["jwks_file"])
    )
    settings = conference_settings(values)
    bus: Bus
    if values["bus"] == "redis":
        bus = RedisBus(values["redis_url"], prefix=values["bus_prefix"], limits=settings.board)
    elif values["bus"] == "nats":
        bus = NatsBus(values["nats_url"], prefix=values["bus_prefix"], limits=settings.board)
    else:
        bus = InProcessBus(settings.board)
    app = create_conference_app(settings, jwks, bus)
    uvicorn.run(
        app,
        host=values["host"],
        port=values["conference_port"],
        **_uvicorn_options("conference", values),
    )
    return 0


def _audit_error(message: str) -> int:
    """One line on stderr, exit status 2: the check could not run as asked."""
    print(f"sealroom audit verify: {message}", file=sys.stderr)
    return 2


def _kept_head(value: str, key: VerifyingKey) -> audit.SignedHead:
    """``--expect-head``: the head's text, or a file holding it; its signature checked."""
    if value.strip().startswith(audit.HEAD_TEXT_PREFIX):
        text = value
    else:
        try:
            text = Path(value).read_text()
        except FileNotFoundError:
            raise ValueError(f"no such file: {value} (the kept head)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the kept head {value}: {type(exc).__name__}") from None
    try:
        head = audit.SignedHead.from_text(text)
        head.verify(key)
    except MalformedInputError:
        raise ValueError(f"the kept head is not a signed audit head ({value})") from None
    except SignatureError:
        raise ValueError("the kept head is not signed by this service's key") from None
    return head


def _save_head(path: Path, head: audit.SignedHead) -> None:
    """Write the signed head atomically (a crash leaves the old one)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(head.to_text() + "\n")
    os.replace(partial, path)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    secrets = Path(args.secrets_file)
    try:
        keys = ServiceKeys.load(secrets)
    except FileNotFoundError:
        return _audit_error(f"no secrets file at {secrets} (audit verify never creates one)")
    except (OSError, ValueError, KeyError, TypeError):
        return _audit_error(f"{secrets} is not a readable Sealroom secrets file")
    key = keys.signing_key.verifying_key
    try:
        expect = _kept_head(args.expect_head, key) if args.expect_head else None
    except ValueError as exc:
        return _audit_error(str(exc))
    url = args.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        return _audit_error(f"no database at {url[len('sqlite:///') :]}")
    try:
        db = open_database(url)
    except (StorageError, psycopg.Error, sqlite3.Error, OSError, ValueError) as exc:
        return _audit_error(f"cannot open the database ({type(exc).__name__})")
    try:
        with db.transaction() as tx:
            rows = tx.all("SELECT * FROM audit ORDER BY seq")
            head = tx.one("SELECT seq, entry_hash FROM audit_head WHERE id = 1")
        if head is None:
            print("no audit head: not a Sealroom key-service database", file=sys.stderr)
            return 2
        report = audit.verify_chain(rows, head, key, expect)
    finally:
        db.close()
    if not report.ok:
        print(f"audit log BROKEN at entry {report.first_bad_seq}: {report.reason}")
        return 1
    signed = audit.SignedHead.sign(keys.signing_key, report.head_seq, report.head_hash)
    extends = f", extending the kept head {expect.seq}" if expect is not None else ""
    print(
        f"audit log OK: {report.entries} entries, head {report.head_seq} "
        f"{report.head_hash.hex()}{extends}"
    )
    print(f"signed head (keep it outside the database): {signed.to_text()}")
    if args.save_head:
        _save_head(Path(args.save_head), signed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sealroom",
        description="Zero-trust end-to-end encryption for video meetings.",
    )
    parser.add_argument("--version", action="version", version=f"sealroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="a whole encrypted meeting with real video and audio, on local services",
        description="Start the development IdP, the key service (SQLite) and the "
        "conferencing service on 127.0.0.1 and play a meeting: a late host, a pre-approved "
        "invitee, a leave, a removal, the scheduled ratchet, a lost device, the end and key "
        "rotation, with encrypted chat, files, a recording, a transcript and an abuse "
        "report. Prints each security claim as it is checked, a table of participants x "
        "epochs, the key events, and draws a timeline.",
    )
    demo.add_argument("--participants", type=int, default=5, help="3 to 8 (default 5)")
    demo.add_argument("--picture", default="demo-timeline.png", help="where the PNG goes")
    demo.add_argument("--data-dir", help="keep the services' data here (default: temporary)")
    demo.add_argument(
        "--browser",
        action="store_true",
        help="add a participant in headless Chromium (the web client, from /usr/bin/chromium) "
        "and save a screenshot of its page beside the timeline",
    )
    demo.set_defaults(func=_cmd_demo)

    unwrap = sub.add_parser(
        "demo-unwrap",
        help="unwrap a DEK group → user → device and show the cost of each step",
        description="Play every party in one process: a DEK encrypted once to a group is "
        "transformed by the key service and decrypted on a device; then the attacks that "
        "must fail are tried.",
    )
    unwrap.set_defaults(func=_cmd_demo_unwrap)

    serve = sub.add_parser(
        "serve",
        help="run the key service and the conferencing service",
        description="For real use: both services, on SQLite (default) or PostgreSQL, "
        "trusting your identity provider's JWKS. Every option also reads its SEALROOM_* "
        "variable (see docs/operations.md); serve passes its children only the options it "
        "was given, and they read the same variables.",
    )
    config.add_arguments(serve, "serve")
    serve.set_defaults(func=_cmd_serve)

    ks = sub.add_parser(
        "keyservice",
        help="run the key service (uvicorn)",
        description="Run the key service. Options override SEALROOM_* "
        "environment variables; see docs/operations.md.",
    )
    config.add_arguments(ks, "keyservice")
    ks.set_defaults(func=_cmd_keyservice)

    idp = sub.add_parser(
        "idp",
        help="run the development identity provider (NOT production)",
        description="Issue JWTs for any user on request, serve the JWKS, and "
        "keep the provider's half of each escrow secret. Development only.",
    )
    config.add_arguments(idp, "idp")
    idp.set_defaults(func=_cmd_idp)

    conf = sub.add_parser(
        "conference",
        help="run the conferencing service (channel + relay)",
        description="One WebSocket channel per meeting and an SFrame relay. "
        "With --bus redis or nats, several instances serve one meeting. Options override "
        "SEALROOM_* environment variables; see docs/operations.md.",
    )
    config.add_arguments(conf, "conference")
    conf.set_defaults(func=_cmd_conference)

    aud = sub.add_parser("audit", help="audit-log tools")
    aud_sub = aud.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = aud_sub.add_parser(
        "verify",
        help="verify the hash chain and every signature",
        description="Exit 0 if the chain is intact (and extends the kept head, if given), 1 "
        "if not, 2 if the check cannot run (a missing secrets file or database, a bad kept "
        "head). On success it prints the signed head: keep it outside the database and pass "
        "it to --expect-head next time, so that a cut tail or a wiped log is caught.",
    )
    verify.add_argument("--database-url", required=True)
    verify.add_argument(
        "--secrets-file", required=True, help="the service's secrets file (never created)"
    )
    verify.add_argument(
        "--expect-head",
        metavar="FILE_OR_TEXT",
        help="a signed head kept earlier (its text, or a file holding it): fail unless the "
        "log still holds it at its position",
    )
    verify.add_argument(
        "--save-head",
        metavar="FILE",
        help="if the log verifies, write its signed head to FILE (may be the --expect-head file)",
    )
    verify.set_defaults(func=_cmd_audit_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
