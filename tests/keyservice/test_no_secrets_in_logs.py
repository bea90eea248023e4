"""No secret reaches a log line or an error message."""

from __future__ import annotations

import logging

import pytest

from sealroom.api.encoding import b64e
from sealroom.idp import PROVIDER_AUDIENCE

from .conftest import Env


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_full_flow_logs_no_secret(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("g")
        alice.add_member("g", "bob")
        doc = alice.encrypt_document("d", b"the plaintext", groups=["g"])
        bob.decrypt_document(doc)
        env.http().post(
            "/v1/users",
            content=b"{broken",
            headers={"authorization": "Bearer " + env.idp.issue("zed", "sealroom-keyservice")},
        )
        secrets = [
            alice.client.ks.device_key.expose_secret_bytes(),  # type: ignore[union-attr]
            alice.client.ks.signing_key.expose_secret_bytes(),  # type: ignore[union-attr]
            env.parts.keys.master_key,
            env.parts.keys.signing_key.expose_secret_bytes(),
            env.idp.escrow_half(env.idp.issue("alice", PROVIDER_AUDIENCE)),
            b"the plaintext",
        ]
    text = "\n".join(r.getMessage() + str(r.args) + (r.exc_text or "") for r in caplog.records)
    for secret in secrets:
        for form in (secret.hex(), b64e(secret), repr(secret)):
            assert form not in text
    assert caplog.records  # something was logged, so the check saw real output
