"""Opening the channel from a browser: the JWT in Sec-WebSocket-Protocol or as the first
message, and the Origin allowlist (a page from any other origin is refused)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import websockets
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sealroom.conference.app import AUDIENCE, ConferenceSettings, create_conference_app
from sealroom.conference.handshake import BEARER_PROTOCOL_PREFIX, SUBPROTOCOL
from sealroom.crypto.signing import SigningKey
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.meeting.messages import BoardMessage
from tests.live_server import live_server

URL = "/v1/meetings/m1/channel"
APP = "https://app.example.com"
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def idp(tmp_path: Path) -> DevIdp:
    return DevIdp(tmp_path / "idp")


def _app(idp: DevIdp, origins: tuple[str, ...] = (APP,)) -> TestClient:
    settings = ConferenceSettings(jwt_issuer=idp.issuer, allowed_origins=origins)
    return TestClient(create_conference_app(settings, JwksSource(document=idp.jwks)))


def _post(user: str, seq: int = 1) -> str:
    m = BoardMessage.create(
        SigningKey.generate(),
        meeting="m1",
        kind="announce",
        user=user,
        device="d",
        seq=seq,
        body={},
    )
    return json.dumps({"type": "post", "message": json.loads(m.to_json())})


def _token(idp: DevIdp, user: str, audience: str = AUDIENCE) -> str:
    return idp.issue(user, audience)


def test_the_token_in_the_websocket_subprotocol_header(idp: DevIdp) -> None:
    protocols = [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + _token(idp, "alice")]
    with (
        _app(idp) as client,
        client.websocket_connect(URL, subprotocols=protocols, headers={"origin": APP}) as ws,
    ):
        assert ws.accepted_subprotocol == SUBPROTOCOL  # never the token
        ws.send_text(_post("alice"))
        assert ws.receive_json()["message"]["user"] == "alice"
        ws.send_text(_post("mallory", 2))  # the token's user, not another
        assert ws.receive_json()["code"] == "wrong_user"


def test_the_token_as_the_first_message(idp: DevIdp) -> None:
    with _app(idp) as client:
        with client.websocket_connect(
            URL, headers={"authorization": "Bearer " + _token(idp, "bob")}
        ) as b:
            b.send_text(_post("bob"))
            assert b.receive_json()["message"]["user"] == "bob"
        with client.websocket_connect(
            URL, subprotocols=[SUBPROTOCOL], headers={"origin": APP}
        ) as ws:
            ws.send_text(json.dumps({"type": "auth", "token": _token(idp, "alice")}))
            assert ws.receive_json()["message"]["user"] == "bob"  # history, once admitted
            ws.send_text(_post("alice"))
            assert ws.receive_json()["message"]["user"] == "alice"


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"type": "auth", "token": "not-a-jwt"}),
        json.dumps({"type": "post", "message": {}}),
        json.dumps({"type": "auth"}),
        "not json",
    ],
)
def test_a_bad_first_message_closes_before_anything_is_relayed(idp: DevIdp, first: str) -> None:
    with _app(idp) as client:
        with client.websocket_connect(
            URL, headers={"authorization": "Bearer " + _token(idp, "bob")}
        ) as b:
            b.send_text(_post("bob"))
            b.receive_json()
        with client.websocket_connect(URL, subprotocols=[SUBPROTOCOL]) as ws:
            ws.send_text(first)
            with pytest.raises(WebSocketDisconnect) as exc:
                ws.receive_json()  # the close, not bob's history
        assert exc.value.code == 4401


def test_a_silent_client_is_closed_after_the_auth_timeout(
    idp: DevIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sealroom.conference.handshake.AUTH_TIMEOUT", 0.2)
    with (
        _app(idp) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, subprotocols=[SUBPROTOCOL]) as ws,
    ):
        ws.receive_json()
    assert exc.value.code == 4401


@pytest.mark.parametrize(
    "protocols",
    [
        [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + "garbage"],
        [BEARER_PROTOCOL_PREFIX + "garbage"],
        ["something-else"],
    ],
)
def test_a_bad_or_missing_token_is_refused_at_the_handshake(
    idp: DevIdp, protocols: list[str]
) -> None:
    with (
        _app(idp) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, subprotocols=protocols),
    ):
        pass
    assert exc.value.code == 4401


def test_a_token_for_another_service_is_refused(idp: DevIdp) -> None:
    protocols = [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + _token(idp, "a", "sealroom-keyservice")]
    with (
        _app(idp) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, subprotocols=protocols),
    ):
        pass
    assert exc.value.code == 4401


@pytest.mark.parametrize("origin", ["https://evil.example", "http://app.example.com", "null"])
def test_a_page_from_another_origin_is_refused_whatever_its_token(idp: DevIdp, origin: str) -> None:
    protocols = [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + _token(idp, "alice")]
    with (
        _app(idp) as client,
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(URL, subprotocols=protocols, headers={"origin": origin}),
    ):
        pass
    assert exc.value.code == 4403


def test_no_page_is_allowed_unless_listed(idp: DevIdp) -> None:
    auth = {"authorization": "Bearer " + _token(idp, "alice")}
    with _app(idp, origins=()) as client:
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(URL, headers={**auth, "origin": APP}),
        ):
            pass
        with client.websocket_connect(URL, headers=auth) as ws:  # not a browser: no Origin
            ws.send_text(_post("alice"))
            assert ws.receive_json()["message"]["user"] == "alice"


async def _real_handshakes(idp: DevIdp) -> None:
    settings = ConferenceSettings(jwt_issuer=idp.issuer, allowed_origins=(APP,))
    app = create_conference_app(settings, JwksSource(document=idp.jwks))
    async with live_server(app) as port:
        url = f"ws://127.0.0.1:{port}{URL}"
        protocols = [SUBPROTOCOL, BEARER_PROTOCOL_PREFIX + _token(idp, "alice")]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, origin="https://evil.example", subprotocols=protocols)
        assert refused.value.response.status_code == 403
        ws = await websockets.connect(url, origin=APP, subprotocols=protocols)
        assert ws.subprotocol == SUBPROTOCOL
        await ws.send(_post("alice"))
        assert json.loads(await ws.recv())["message"]["user"] == "alice"
        await ws.close()


def test_a_real_server_refuses_another_origin_at_the_http_handshake(idp: DevIdp) -> None:
    asyncio.run(_real_handshakes(idp))
