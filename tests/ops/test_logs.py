"""Structured logs: one JSON object a line, each request's lines under the id its answer
returns, each refusal logged once with its code, and no secret anywhere in them (keys,
escrow halves, tokens, plaintext), through whole flows on both services."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from sealroom.api.encoding import b64e
from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.crypto.signing import SigningKey
from sealroom.idp import PROVIDER_AUDIENCE, DevIdp
from sealroom.keyservice.app import create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from sealroom.meeting.messages import BoardMessage
from sealroom.ops.logs import JsonFormatter
from sealroom.sdk import BasicSplitTrust, SyncClient
from tests.keyservice.conftest import _SyncASGI


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    loggers = [logging.getLogger(n) for n in ("sealroom", "uvicorn.error")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        for lg, (level, _) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def _forms(secret: bytes | str) -> list[str]:
    if isinstance(secret, str):
        return [secret]
    return [secret.hex(), b64e(secret), repr(secret)]


def test_both_services_log_json_lines_with_request_ids_and_no_secret(
    tmp_path: Path, captured: io.StringIO
) -> None:
    idp = DevIdp(tmp_path / "idp")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ks.db'}",
        secrets_file=tmp_path / "secrets.json",
        jwt_issuer=idp.issuer,
        jwks_file=tmp_path / "unused",
    )
    app = create_app(settings, jwks=JwksSource(document=idp.jwks))
    tokens: list[str] = []

    def jwt_for(user: str) -> object:
        def jwt(audience: str) -> str:
            tokens.append(idp.issue(user, audience))
            return tokens[-1]

        return jwt

    def client(user: str) -> SyncClient:
        return SyncClient(
            "http://keyservice",
            jwt=jwt_for(user),  # type: ignore[arg-type]
            secret=BasicSplitTrust(lambda: idp.escrow_half(idp.issue(user, PROVIDER_AUDIENCE))),
            keystore=tmp_path / user / "device.json",
            transport=httpx.ASGITransport(app=app),
        )

    with client("alice") as alice, client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("g")
        alice.add_member("g", "bob")
        doc = alice.encrypt_document("d", b"the plaintext", groups=["g"])
        assert bob.decrypt_document(doc) == b"the plaintext"
        raw = httpx.Client(transport=_SyncASGI(app), base_url="http://keyservice")
        bad_token = idp.issue("zed", "sealroom-keyservice")
        tokens.append(bad_token)
        refused = raw.post(
            "/v1/users", content=b"{broken", headers={"authorization": "Bearer " + bad_token}
        )
        forged = raw.get("/v1/users/me", headers={"authorization": "Bearer " + bad_token + "x"})
        raw.close()
        secrets: list[bytes | str] = [
            alice.client.ks.device_key.expose_secret_bytes(),  # type: ignore[union-attr]
            alice.client.ks.signing_key.expose_secret_bytes(),  # type: ignore[union-attr]
            app.state.parts.keys.master_key,
            app.state.parts.keys.signing_key.expose_secret_bytes(),
            idp.escrow_half(idp.issue("alice", PROVIDER_AUDIENCE)),
            b"the plaintext",
        ]
    app.state.parts.db.close()

    # The channel: a token in the Sec-WebSocket-Protocol header, posts, a refused post.
    conference = create_conference_app(
        ConferenceSettings(jwt_issuer=idp.issuer), JwksSource(document=idp.jwks)
    )
    channel_token = idp.issue("carl", AUDIENCE)
    tokens.append(channel_token)
    post = BoardMessage.create(
        SigningKey.generate(),
        meeting="m1",
        kind="announce",
        user="carl",
        device="c",
        seq=1,
        body={},
    )
    with (
        TestClient(conference) as tc,
        tc.websocket_connect(
            "/v1/meetings/m1/channel",
            subprotocols=["sealroom.v1", "sealroom.bearer." + channel_token],
        ) as ws,
    ):
        ws.send_text(json.dumps({"type": "post", "message": json.loads(post.to_json())}))
        assert ws.receive_json()["type"] == "board"
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "malformed_message"

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert len(lines) > 20
    for secret in [*secrets, *tokens]:
        for form in _forms(secret):
            assert form not in text
    # A refusal is logged once, with its code, under the id its answer carried.
    rid = refused.headers["x-request-id"]
    mine = [line for line in lines if line.get("request_id") == rid]
    assert [line.get("code") for line in mine] == ["malformed_input"]
    assert (mine[0]["level"], mine[0]["status"]) == ("info", 400)
    forged_lines = [ln for ln in lines if ln.get("request_id") == forged.headers["x-request-id"]]
    assert [line.get("code") for line in forged_lines] == ["invalid_token"]
    assert any(line.get("code") == "malformed_message" for line in lines)  # the channel's
