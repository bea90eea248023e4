"""One settings table for every service, and the configuration traps an operator hit:
``serve`` ignoring ``SEALROOM_DATABASE_URL``, ``SEALROOM_JWKS_URL`` crashing it with a
traceback, no JWKS at all starting "healthy" while every login failed, and an empty secrets
file. Each must now work, or stop at start with one line naming the setting."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import httpx
import pytest

from sealroom import config
from sealroom.idp import DevIdp, create_idp_app
from sealroom.keyservice.settings import Settings
from tests.live_server import live_server_thread
from tests.ops.services import alive, clean_env, descendants, ports, sealroom, start, wait_for

DOCS = Path(__file__).parents[2] / "docs" / "operations.md"


def _args(service: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, service)
    return parser.parse_args(argv)


def test_a_flag_beats_the_variable_which_beats_the_default(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kid": "k"}]}))
    env = {"SEALROOM_JWKS_FILE": str(jwks), "SEALROOM_KEYSERVICE_PORT": "9000"}
    values = config.resolve("keyservice", _args("keyservice", []), env)
    assert values["keyservice_port"] == 9000
    assert values["database_url"] == "sqlite:///sealroom-keyservice.db"  # the default
    values = config.resolve("keyservice", _args("keyservice", ["--port", "9001"]), env)
    assert values["keyservice_port"] == 9001
    env["SEALROOM_CORS_ORIGINS"] = "https://a.example, https://b.example"
    values = config.resolve(
        "keyservice", _args("keyservice", ["--cors-origin", "https://c.example"]), env
    )
    assert values["cors_origins"] == ("https://c.example",)  # the flag replaces the list
    assert config.resolve("keyservice", None, env)["cors_origins"] == (
        "https://a.example",
        "https://b.example",
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "SEALROOM_JWKS_URL"),
        ({"SEALROOM_JWKS_URL": "http://idp/jwks", "SEALROOM_JWKS_FILE": "x"}, "SEALROOM_JWKS_URL"),
        ({"SEALROOM_JWKS_FILE": "/nonexistent/jwks.json"}, "SEALROOM_JWKS_FILE"),
        ({"SEALROOM_JWKS_URL": "ftp://idp/jwks"}, "SEALROOM_JWKS_URL"),
        ({"SEALROOM_JWKS_URL": "http://idp/j", "SEALROOM_WORKERS": "two"}, "SEALROOM_WORKERS"),
        (
            {"SEALROOM_JWKS_URL": "http://idp/j", "SEALROOM_DATABASE_URL": "mysql://x"},
            "SEALROOM_DATABASE_URL",
        ),
        (
            {"SEALROOM_JWKS_URL": "http://idp/j", "SEALROOM_LOG_FORMAT": "xml"},
            "SEALROOM_LOG_FORMAT",
        ),
    ],
)
def test_a_bad_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.resolve("keyservice", None, env)
    assert exc.value.setting.env == named
    assert str(exc.value).startswith(named)


def test_every_key_service_setting_is_a_row_of_the_table() -> None:
    for f in fields(Settings):
        if f.name != "extra":
            row = config.setting(f.name)
            assert "keyservice" in row.services, f.name
            assert row.default == getattr(Settings(), f.name), f.name


def test_the_documented_table_is_the_table() -> None:
    text = DOCS.read_text()
    assert config.markdown_table() in text


# --- the traps, through the command line ---------------------------------------------------


def _one_line(result: subprocess.CompletedProcess[str], command: str, setting: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sealroom {command}: {setting}"), lines[0]


@pytest.mark.parametrize("command", ["serve", "keyservice", "conference"])
def test_no_jwks_at_all_stops_the_service_at_start(tmp_path: Path, command: str) -> None:
    # It used to start "healthy" and refuse every login without a word.
    result = sealroom(command, env=clean_env(), cwd=tmp_path, timeout=30)
    _one_line(result, command, "SEALROOM_JWKS_URL")
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_an_empty_secrets_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("")
    env = clean_env(SEALROOM_JWKS_URL="http://127.0.0.1:9/jwks", SEALROOM_SECRETS_FILE="s.json")
    result = sealroom("keyservice", env=env, cwd=tmp_path, timeout=30)
    _one_line(result, "keyservice", "SEALROOM_SECRETS_FILE")
    assert "empty" in result.stderr
    (tmp_path / "s.json").write_text('{"version": 1, "signing_')  # truncated
    result = sealroom("keyservice", env=env, cwd=tmp_path, timeout=30)
    _one_line(result, "keyservice", "SEALROOM_SECRETS_FILE")


def test_a_malformed_variable_is_one_clear_line(tmp_path: Path) -> None:
    env = clean_env(SEALROOM_JWKS_URL="http://127.0.0.1:9/jwks", SEALROOM_CONFERENCE_PORT="x")
    _one_line(sealroom("serve", env=env, cwd=tmp_path), "serve", "SEALROOM_CONFERENCE_PORT")


@pytest.fixture
def idp_url(tmp_path: Path) -> Iterator[str]:
    idp = DevIdp(tmp_path / "idp")
    with live_server_thread(create_idp_app(idp)) as port:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_reads_the_variables_and_passes_only_what_it_was_given(
    tmp_path: Path, idp_url: str
) -> None:
    # SEALROOM_JWKS_URL used to crash serve's children with a traceback, and
    # SEALROOM_DATABASE_URL was ignored for a SQLite file in the working folder.
    ks_port, conf_port = ports(2)
    data = tmp_path / "data"
    data.mkdir()
    env = clean_env(
        SEALROOM_JWKS_URL=idp_url,
        SEALROOM_DATABASE_URL=f"sqlite:///{data / 'chosen.db'}",
        SEALROOM_SECRETS_FILE=str(data / "secrets.json"),
        SEALROOM_CONFERENCE_PORT=str(conf_port),
    )
    work = tmp_path / "work"
    work.mkdir()
    proc = start(
        "serve",
        "--keyservice-port",
        str(ks_port),
        "--no-web",
        env=env,
        cwd=work,
        log=tmp_path / "log",
    )
    try:
        for port in (ks_port, conf_port):
            answer = wait_for(f"http://127.0.0.1:{port}/readyz", proc)
            assert answer.status_code == 200, answer.text
            assert answer.json()["checks"]["idp_keys"] == "ok"
        assert (data / "chosen.db").is_file()
        assert list(work.iterdir()) == []  # no default SQLite file, no default secrets
        argvs = set()
        for pid in descendants(proc.pid):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if argv[1:3] == ["-m", "sealroom"]:
                argvs.add(tuple(a for a in argv[3:] if a))
        assert ("keyservice", "--keyservice-port", str(ks_port)) in argvs
        assert ("conference",) in argvs  # its port came from the variable, not from serve
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_kill_9_of_serve_takes_its_services_down_with_it(tmp_path: Path, idp_url: str) -> None:
    # They used to live on, orphaned, holding their ports: a new serve could not start.
    ks_port, conf_port = ports(2)
    env = clean_env(SEALROOM_JWKS_URL=idp_url)
    argv = ["serve", "--keyservice-port", str(ks_port), "--conference-port", str(conf_port)]
    proc = start(*argv, "--workers", "2", "--no-web", env=env, cwd=tmp_path, log=tmp_path / "log")
    try:
        wait_for(f"http://127.0.0.1:{ks_port}/healthz", proc)
        wait_for(f"http://127.0.0.1:{conf_port}/healthz", proc)
        below = descendants(proc.pid)
        assert len(below) >= 4  # two services, two key-service workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while any(alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in below if alive(p)]
        # The ports are free again: a new serve starts.
        again = start(*argv, "--no-web", env=env, cwd=tmp_path, log=tmp_path / "log2")
        try:
            assert wait_for(f"http://127.0.0.1:{ks_port}/readyz", again).status_code == 200
            assert wait_for(f"http://127.0.0.1:{conf_port}/readyz", again).status_code == 200
        finally:
            _stop(again)
    finally:
        for p in descendants(proc.pid) if proc.poll() is None else set():
            os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_idp_answers_through_the_table(tmp_path: Path) -> None:
    (port,) = ports(1)
    env = clean_env(SEALROOM_IDP_PORT=str(port))
    proc = start(
        "idp", "--data-dir", str(tmp_path / "idp"), env=env, cwd=tmp_path, log=tmp_path / "log"
    )
    try:
        jwks = wait_for(f"http://127.0.0.1:{port}/.well-known/jwks.json", proc)
        assert jwks.json()["keys"]
        assert httpx.post(
            f"http://127.0.0.1:{port}/v1/token", json={"user_id": "a", "audience": "x"}
        ).json()["token"]
    finally:
        _stop(proc)
