"""The deployment's topology. Containers cannot run here, so compose.yaml is checked for
what it asks of Sealroom (every variable a real setting, every command one the CLI takes,
one entry point routing the channel), and the same topology runs as processes: two key
services on one PostgreSQL database, two conferencing services on one NATS broker, and
one meeting whose participants are spread over all four."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealroom import config
from sealroom.cli import build_parser
from sealroom.idp import DevIdp, create_idp_app
from sealroom.meeting.session import MeetingConfig
from sealroom.sdk import Joined, KeyInstalled
from tests.brokers import PORTS, reachable
from tests.databases import fresh_database_url
from tests.live_meeting import Person
from tests.live_server import live_server_thread
from tests.ops.services import clean_env, ports, start, wait_for

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.timeout(300)


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_asks_only_for_real_settings_and_commands() -> None:
    services = _compose()["services"]
    assert {"postgres", "nats", "idp", "proxy"} <= set(services)
    keyservices = [n for n, s in services.items() if s.get("command", [""])[0] == "keyservice"]
    conferences = [n for n, s in services.items() if s.get("command", [""])[0] == "conference"]
    assert len(keyservices) == 2
    assert len(conferences) == 2
    known = {s.env for s in config.TABLE}
    parser = build_parser()
    for name, service in services.items():
        for var in service.get("environment", {}):
            if var.startswith("SEALROOM_"):
                assert var in known, (name, var)
        command = service.get("command")
        if command and name not in ("nats",):
            parser.parse_args(command)  # a command the CLI takes, flags and all
    for name in keyservices:
        env = services[name]["environment"]
        assert env["SEALROOM_DATABASE_URL"].startswith("postgresql://")
        assert ":" not in env["SEALROOM_DATABASE_URL"].split("@")[0][len("postgresql://") :]
    for name in conferences:
        assert services[name]["environment"]["SEALROOM_BUS"] == "nats"
    assert "-js" in services["nats"]["command"]  # JetStream, on disk (-sd)
    assert "-sd" in services["nats"]["command"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    for name in keyservices + conferences:
        assert f"server {name}:" in nginx
    assert re.search(r"location /v1/meetings/ \{\s*proxy_pass http://conference;", nginx)
    assert "Upgrade $http_upgrade" in nginx


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[tuple[DevIdp, str]]:
    dev = DevIdp(tmp_path / "idp")
    with live_server_thread(create_idp_app(dev)) as port:
        yield dev, f"http://127.0.0.1:{port}"


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def _meeting(servers: list[dict[str, str]]) -> None:
    """A meeting spread over four services: each participant on its own pair."""
    config = MeetingConfig(f"topo-{uuid.uuid4().hex[:8]}", host="hana", invitees=("bob", "carl"))
    hana, bob, carl = (
        Person(s, u, config) for s, u in zip(servers, ("hana", "bob", "carl"), strict=False)
    )
    for p in (bob, carl):
        await p.sdk.initialize()
    try:
        await (await hana.enter()).start()
        await hana.wait(KeyInstalled)
        await (await bob.enter()).join()
        await bob.wait(Joined)
        await (await carl.enter()).join()
        await carl.wait(Joined)
        await bob.frames_from(hana, b"across instances")
        await hana.frames_from(carl, b"and back")
        await carl.frames_from(bob, b"third pair")
        epochs = {p.epoch() for p in (hana, bob, carl)}
        assert len(epochs) == 1
    finally:
        for p in (hana, bob, carl):
            if p.mc is not None:
                await p.mc.close()
            await p.sdk.aclose()


def test_the_compose_topology_as_processes(tmp_path: Path, idp: tuple[DevIdp, str]) -> None:
    if not reachable(PORTS["nats"]):
        pytest.skip(f"nats not reachable on 127.0.0.1:{PORTS['nats']}")
    _, idp_url = idp
    prefix = f"srtopo{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []
    with fresh_database_url("postgres", tmp_path) as database_url:
        env = clean_env(
            SEALROOM_JWKS_URL=f"{idp_url}/.well-known/jwks.json",
            SEALROOM_DATABASE_URL=database_url,
            SEALROOM_SECRETS_FILE=str(tmp_path / "secrets" / "keyservice-secrets.json"),
            SEALROOM_BUS="nats",
            SEALROOM_BUS_PREFIX=prefix,
            SEALROOM_LOG_LEVEL="warning",
        )
        ks1, ks2, conf1, conf2 = ports(4)
        try:
            for i, port in enumerate((ks1, ks2)):
                procs.append(
                    start("keyservice", "--port", str(port), env=env, cwd=tmp_path,
                          log=tmp_path / f"ks{i}.log")
                )  # fmt: skip
            for i, port in enumerate((conf1, conf2)):
                procs.append(
                    start("conference", "--port", str(port), env=env, cwd=tmp_path,
                          log=tmp_path / f"conf{i}.log")
                )  # fmt: skip
            urls = {p: f"http://127.0.0.1:{p}" for p in (ks1, ks2, conf1, conf2)}
            for p, proc in zip((ks1, ks2, conf1, conf2), procs, strict=True):
                assert wait_for(f"{urls[p]}/readyz", proc).status_code == 200
            shared = str(tmp_path / "people")
            servers = [
                {"idp": idp_url, "ks": urls[ks1], "conf": urls[conf1], "tmp": shared},
                {"idp": idp_url, "ks": urls[ks2], "conf": urls[conf2], "tmp": shared},
                {"idp": idp_url, "ks": urls[ks1], "conf": urls[conf2], "tmp": shared},
            ]
            asyncio.run(_meeting(servers))
        finally:
            _stop(procs)
            from sealroom.conference.bus import NatsBus

            async def drop() -> None:
                bus = NatsBus(prefix=prefix)
                with contextlib.suppress(Exception):
                    await bus.delete_stream()
                await bus.close()

            asyncio.run(drop())
