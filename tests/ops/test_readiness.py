"""``/readyz`` follows what each service needs: the key service goes unready when its
PostgreSQL stops and ready again when it returns; the conferencing service likewise with
its broker. Each server stopped here is the test's own (a throwaway PostgreSQL cluster in a
temporary folder, a redis-server or nats-server on another port)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.bus import Bus, NatsBus, RedisBus
from sealroom.demo.services import free_port
from sealroom.idp import DevIdp
from sealroom.keyservice.app import create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from tests.brokers_own import OwnBroker

pytestmark = pytest.mark.timeout(180)
INITDB, PG_CTL = shutil.which("initdb"), shutil.which("pg_ctl")
RUNUSER = shutil.which("runuser")


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder, run as the postgres
    user), on a free port, that the test may stop and start."""

    def __init__(self) -> None:
        if INITDB is None or PG_CTL is None or RUNUSER is None:
            pytest.skip("needs PostgreSQL's initdb and pg_ctl, and runuser")
        try:
            self.user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("needs a postgres system user to run a throwaway cluster")
        if os.geteuid() != 0:
            pytest.skip("running a cluster as the postgres user needs root here")
        self.dir = Path(tempfile.mkdtemp(prefix="sealroom-pg-"))
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()
        self._run(INITDB, "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def _run(self, *argv: str) -> None:
        subprocess.run(
            [str(RUNUSER), "-u", "postgres", "--", *argv],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        assert PG_CTL is not None
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(
            PG_CTL,
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        assert PG_CTL is not None
        self._run(PG_CTL, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with_stop = subprocess.run(
            [
                str(RUNUSER),
                "-u",
                "postgres",
                "--",
                str(PG_CTL),
                "-D",
                str(self.dir / "data"),
                "status",
            ],
            capture_output=True,
            check=False,
        )
        if with_stop.returncode == 0:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/readyz")


async def _until(client: httpx.AsyncClient, status: int, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = await _ready(client)
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


def test_the_key_service_is_unready_while_postgresql_is_stopped(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    idp = DevIdp(tmp_path / "idp")
    settings = Settings(
        database_url=postgres.url,
        secrets_file=tmp_path / "s.json",
        jwt_issuer=idp.issuer,
        jwks_file=tmp_path / "unused",
    )
    app = create_app(settings, jwks=JwksSource(document=idp.jwks))
    me = {"authorization": "Bearer " + idp.issue("alice", "sealroom-keyservice")}

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ks") as client:
            ready = await _ready(client)
            assert ready.status_code == 200, ready.text
            postgres.stop()
            down = await _until(client, 503)
            assert down.status_code == 503
            assert down.json()["checks"]["database"].startswith("unreachable")
            refused = await client.get("/v1/users/me", headers=me)
            assert refused.status_code == 503  # unavailable, with Retry-After: not a 500
            assert refused.json()["code"] == "unavailable"
            assert "retry-after" in refused.headers
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            postgres.start()
            back = await _until(client, 200)
            assert back.status_code == 200, back.text
            assert (await client.get("/v1/users/me", headers=me)).status_code == 404

    try:
        asyncio.run(run())
    finally:
        app.state.parts.db.close()


async def _broker_readiness(idp: DevIdp, bus: Bus, broker: OwnBroker) -> list[int]:
    app = create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks), bus
    )
    statuses = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://conf") as client:
        statuses.append((await _ready(client)).status_code)
        broker.stop(hard=True)
        down = await _until(client, 503)
        assert "broker" in down.json()["checks"]
        statuses.append(down.status_code)
        broker.start()
        statuses.append((await _until(client, 200)).status_code)
    await bus.close()
    return statuses


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_the_conferencing_service_is_unready_while_its_broker_is_stopped(
    kind: str, tmp_path: Path
) -> None:
    with OwnBroker(kind, tmp_path / kind) as broker:
        bus: Bus = (
            RedisBus(broker.url, prefix="t") if kind == "redis" else NatsBus(broker.url, prefix="t")
        )
        statuses = asyncio.run(_broker_readiness(DevIdp(tmp_path / "idp"), bus, broker))
    assert statuses == [200, 503, 200]
