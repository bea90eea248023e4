"""The ``sealroom`` command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import uvicorn

from sealroom import __version__
from sealroom._process import has_exited, stop_processes
from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.bus import Bus, InProcessBus, NatsBus, RedisBus
from sealroom.crypto.signing import VerifyingKey
from sealroom.errors import MalformedInputError, SignatureError
from sealroom.idp import DevIdp, create_idp_app
from sealroom.keyservice import audit
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.keyservice.settings import Settings
from sealroom.keyservice.storage import StorageError, open_database

# Seconds a stopping service waits for open connections; a client that stopped reading
# would otherwise hold its socket, and the shutdown, open for ever.
GRACEFUL_SHUTDOWN = 5


def _cmd_demo(args: argparse.Namespace) -> int:
    # Video, audio and plotting load only for the demos, so `serve` starts fast.
    from sealroom.demo.meeting import run_demo  # noqa: PLC0415

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


def _cmd_serve(args: argparse.Namespace) -> int:
    """The key service and the conferencing service together, for real use.

    SIGTERM, or SIGINT (Ctrl-C) or SIGHUP unless ignored at start, stops both; exit status
    0 then. If either service exits on its own, the other is stopped and the status is 1.
    """
    cmd = [sys.executable, "-m", "sealroom"]
    jwks = ["--jwks-url", args.jwks_url] if args.jwks_url else ["--jwks-file", str(args.jwks_file)]
    web_root = None if args.no_web else (args.web_root or default_web_root())
    web = ["--web-root", str(web_root)] if web_root is not None else []
    # The web client comes from the key service's origin: the key service needs no CORS for
    # it, and the channel admits that origin (both spellings of a loopback address).
    page_origins = _served_origins(args.host, args.keyservice_port) if web_root else []
    cors = [a for o in args.cors_origin or [] for a in ("--cors-origin", o)]
    allowed = [
        a for o in page_origins + (args.allowed_origin or []) for a in ("--allowed-origin", o)
    ]
    services = {
        "key service": [
            *cmd,
            "keyservice",
            "--database-url",
            args.database_url,
            "--secrets-file",
            str(args.secrets_file),
            *jwks,
            "--jwt-issuer",
            args.jwt_issuer,
            "--host",
            args.host,
            "--port",
            str(args.keyservice_port),
            "--workers",
            str(args.workers),
            *web,
            *cors,
        ],
        "conferencing service": [
            *cmd,
            "conference",
            *jwks,
            "--jwt-issuer",
            args.jwt_issuer,
            "--bus",
            args.bus,
            "--host",
            args.host,
            "--port",
            str(args.conference_port),
            *allowed,
        ],
    }
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
    try:
        for name, argv in services.items():
            if requested:
                break
            # Their own process group: a terminal's Ctrl-C reaches only us, and we stop them.
            procs[name] = subprocess.Popen(argv, process_group=0)
        if not requested:
            print(
                f"key service on http://{args.host}:{args.keyservice_port}, conferencing "
                f"service on http://{args.host}:{args.conference_port} (Ctrl-C stops both)",
                flush=True,
            )
            if web_root is not None:
                print(f"web client on http://{args.host}:{args.keyservice_port}/web/", flush=True)
                print(
                    f"meeting page: http://{args.host}:{args.keyservice_port}/web/meeting.html"
                    f"?conference=ws://{args.host}:{args.conference_port}&meeting=MEETING",
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


def _keyservice_settings(args: argparse.Namespace) -> Settings:
    base = (
        Settings.from_env()
        if (os.environ.get("SEALROOM_JWKS_URL") or os.environ.get("SEALROOM_JWKS_FILE"))
        else None
    )
    values = {
        k: v
        for k, v in {
            "database_url": args.database_url,
            "secrets_file": args.secrets_file,
            "jwt_issuer": args.jwt_issuer,
            "jwks_url": args.jwks_url,
            "jwks_file": args.jwks_file,
            "jwt_audience": args.jwt_audience,
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "auditors": tuple(args.auditor) if args.auditor else None,
            "cors_origins": tuple(args.cors_origin) if args.cors_origin else None,
            "web_root": args.web_root,
        }.items()
        if v is not None
    }
    settings = dataclasses.replace(base, **values) if base else Settings(**values)
    settings.validate()
    return settings


def _cmd_keyservice(args: argparse.Namespace) -> int:
    settings = _keyservice_settings(args)
    os.environ.update(settings.to_env())  # worker processes read their settings from here
    uvicorn.run(
        "sealroom.keyservice.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    return 0


def _cmd_idp(args: argparse.Namespace) -> int:
    idp = DevIdp(Path(args.data_dir), issuer=args.issuer)
    print(f"development IdP (NOT for production) on http://{args.host}:{args.port}", flush=True)
    app = create_idp_app(idp, cors_origins=args.cors_origin or ())
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _cmd_conference(args: argparse.Namespace) -> int:
    jwks = JwksSource(url=args.jwks_url) if args.jwks_url else JwksSource(path=args.jwks_file)
    settings = ConferenceSettings(
        jwt_issuer=args.jwt_issuer, allowed_origins=tuple(args.allowed_origin or ())
    )
    bus: Bus
    if args.bus == "redis":
        bus = RedisBus(args.redis_url, prefix=args.prefix, limits=settings.board)
    elif args.bus == "nats":
        bus = NatsBus(args.nats_url, prefix=args.prefix, limits=settings.board)
    else:
        bus = InProcessBus(settings.board)
    app = create_conference_app(settings, jwks, bus)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
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
        description="For real use: both services, on SQLite (default) or "
        "PostgreSQL, trusting your identity provider's JWKS.",
    )
    serve.add_argument("--database-url", default="sqlite:///sealroom-keyservice.db")
    serve.add_argument(
        "--secrets-file", type=Path, default=Path("sealroom-keyservice-secrets.json")
    )
    serve.add_argument("--jwks-url", help="the IdP's JWKS URL")
    serve.add_argument("--jwks-file", type=Path, help="the IdP's JWKS as a file")
    serve.add_argument("--jwt-issuer", default="sealroom-dev-idp")
    serve.add_argument("--bus", choices=["inprocess", "redis", "nats"], default="inprocess")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--keyservice-port", type=int, default=8470)
    serve.add_argument("--conference-port", type=int, default=8472)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--web-root",
        type=Path,
        help="the web client to serve under /web/ on the key service's origin "
        "(default: web/ of this checkout, if there is one)",
    )
    serve.add_argument("--no-web", action="store_true", help="do not serve the web client")
    serve.add_argument(
        "--cors-origin", action="append", help="another origin whose pages may call the key service"
    )
    serve.add_argument(
        "--allowed-origin", action="append", help="another origin whose pages may open the channel"
    )
    serve.set_defaults(func=_cmd_serve)

    ks = sub.add_parser(
        "keyservice",
        help="run the key service (uvicorn)",
        description="Run the key service. Options override SEALROOM_* "
        "environment variables; see docs/keyservice.md.",
    )
    ks.add_argument(
        "--database-url",
        help="sqlite:///file.db or postgresql://… (default: sqlite:///sealroom-keyservice.db)",
    )
    ks.add_argument("--secrets-file", type=Path, help="service signing and master keys")
    ks.add_argument("--jwt-issuer", help="expected JWT issuer")
    ks.add_argument("--jwks-url", help="the IdP's JWKS URL")
    ks.add_argument("--jwks-file", type=Path, help="the IdP's JWKS as a file")
    ks.add_argument("--jwt-audience", help="this service's audience")
    ks.add_argument("--auditor", action="append", help="a user allowed to read audit entries")
    ks.add_argument(
        "--cors-origin", action="append", help="a web origin whose pages may call the API"
    )
    ks.add_argument("--web-root", type=Path, help="static files to serve under /web/")
    ks.add_argument("--host", help="listen address (default 127.0.0.1)")
    ks.add_argument("--port", type=int, help="listen port (default 8470)")
    ks.add_argument("--workers", type=int, help="worker processes (default 1)")
    ks.add_argument("--log-level", default="warning")
    ks.set_defaults(func=_cmd_keyservice)

    idp = sub.add_parser(
        "idp",
        help="run the development identity provider (NOT production)",
        description="Issue JWTs for any user on request, serve the JWKS, and "
        "keep the provider's half of each escrow secret. Development only.",
    )
    idp.add_argument("--data-dir", default=".sealroom-idp")
    idp.add_argument("--issuer", default="sealroom-dev-idp")
    idp.add_argument("--host", default="127.0.0.1")
    idp.add_argument("--port", type=int, default=8471)
    idp.add_argument(
        "--cors-origin", action="append", help="a web origin whose pages may ask for tokens"
    )
    idp.add_argument("--log-level", default="warning")
    idp.set_defaults(func=_cmd_idp)

    conf = sub.add_parser(
        "conference",
        help="run the conferencing service (channel + relay)",
        description="One WebSocket channel per meeting and an SFrame relay. "
        "With --bus redis or nats, several instances serve one meeting.",
    )
    conf.add_argument("--jwks-url", help="the IdP's JWKS URL")
    conf.add_argument("--jwks-file", type=Path, help="the IdP's JWKS as a file")
    conf.add_argument("--jwt-issuer", default="sealroom-dev-idp")
    conf.add_argument("--bus", choices=["inprocess", "redis", "nats"], default="inprocess")
    conf.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    conf.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    conf.add_argument("--prefix", default="sealroom", help="key or subject prefix on the bus")
    conf.add_argument(
        "--allowed-origin",
        action="append",
        help="a web origin whose pages may open the channel (others are refused)",
    )
    conf.add_argument("--host", default="127.0.0.1")
    conf.add_argument("--port", type=int, default=8472)
    conf.add_argument("--log-level", default="warning")
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
