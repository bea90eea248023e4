"""Real servers on 127.0.0.1: the development IdP and the key service (two uvicorn workers),
started through the CLI, and the SDK talking to them over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealroom.api.encoding import b64d
from sealroom.demo.services import Services
from sealroom.idp import PROVIDER_AUDIENCE
from sealroom.sdk import BasicSplitTrust, ServiceRefusedError, SyncClient


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("servers")
    services = Services(tmp, workers=2)
    try:
        yield {
            "idp": services.idp,
            "ks": services.ks,
            "db": services.database_url,
            "secrets": str(services.secrets),
            "tmp": str(tmp),
        }
    finally:
        services.stop()


def _client(servers: dict[str, str], user: str, device: str = "laptop") -> SyncClient:
    idp = servers["idp"]

    def token(audience: str) -> str:
        r = httpx.post(f"{idp}/v1/token", json={"user_id": user, "audience": audience})
        r.raise_for_status()
        return str(r.json()["token"])

    def provider_half() -> bytes:
        r = httpx.post(
            f"{idp}/v1/escrow-half", headers={"authorization": "Bearer " + token(PROVIDER_AUDIENCE)}
        )
        r.raise_for_status()
        return b64d(r.json()["half"])

    return SyncClient(
        servers["ks"],
        jwt=token,
        secret=BasicSplitTrust(provider_half),
        keystore=Path(servers["tmp"]) / user / f"{device}.json",
        device_name=device,
    )


def test_whole_flow_over_real_http(servers: dict[str, str]) -> None:
    with (
        _client(servers, "alice") as alice,
        _client(servers, "bob") as bob,
        _client(servers, "bob", "phone") as bob_phone,
    ):
        alice.initialize()
        bob.initialize()
        bob_phone.initialize()
        alice.create_group("standup")
        alice.add_member("standup", "bob")
        doc = alice.encrypt_document("notes", b"agenda: ship it", groups=["standup"])
        assert bob.decrypt_document(doc) == b"agenda: ship it"
        assert bob_phone.decrypt_document(doc) == b"agenda: ship it"
        bob.revoke_device(bob_phone.client.device_id)
        with pytest.raises(ServiceRefusedError, match="device_revoked"):
            bob_phone.decrypt_document(doc)
        assert alice.verify_audit().ok is True


def test_audit_cli_against_the_live_database(servers: dict[str, str]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealroom",
            "audit",
            "verify",
            "--database-url",
            servers["db"],
            "--secrets-file",
            servers["secrets"],
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "audit log OK" in out.stdout


def test_openapi_is_served(servers: dict[str, str]) -> None:
    spec = httpx.get(servers["ks"] + "/openapi.json").json()
    assert spec["info"]["title"] == "Sealroom key service"
