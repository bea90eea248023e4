"""The web core against the real key service on 127.0.0.1 (uvicorn in this process).

Python clients set a meeting up as the SDK does: alice creates a forward-only group, adds
bob, seals SK_n to the group once and registers it, and shares a chat message and a
recording (a stream) with bob as managed documents. Then a node process, given bob's user
key and a JWT, registers itself as a new device of bob (certificate and user→device
transform key made in JavaScript), has the session key transformed group → user → device
and decrypts it, then opens the document and the stream (each sealer checked through its
device certificate). A node device of carol, who is not a member, is refused.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sealroom.api.encoding import b64e
from sealroom.crypto.envelope import seal
from sealroom.idp import PROVIDER_AUDIENCE, DevIdp
from sealroom.keyservice.app import create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from sealroom.sdk import BasicSplitTrust, Client
from tests.live_server import live_server
from tests.web.node import WEB, node_or_skip

MEETING = "m-live-1"
pytestmark = pytest.mark.timeout(120)


def _client(idp: DevIdp, base: str, user: str, tmp: Path) -> Client:
    return Client(
        base,
        jwt=lambda audience: idp.issue(user, audience),
        secret=BasicSplitTrust(lambda: idp.escrow_half(idp.issue(user, PROVIDER_AUDIENCE))),
        keystore=tmp / f"{user}.json",
    )


async def _node(node: str, job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        node,
        "scripts/keyservice-unwrap.js",
        cwd=WEB,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(job).encode()), timeout=90)
    assert out, err.decode()
    return proc.returncode or 0, json.loads(out)


async def _scenario(node: str, tmp: Path) -> None:
    idp = DevIdp(tmp / "idp")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'ks.db'}",
        secrets_file=tmp / "secrets.json",
        jwt_issuer=idp.issuer,
        jwks_file=tmp / "unused",
    )
    app = create_app(settings, jwks=JwksSource(document=idp.jwks))
    async with live_server(app) as port:
        base = f"http://127.0.0.1:{port}"
        async with (
            _client(idp, base, "alice", tmp) as alice,
            _client(idp, base, "bob", tmp) as bob,
            _client(idp, base, "carol", tmp) as carol,
        ):
            for c in (alice, bob, carol):
                await c.initialize()
            group_key = await alice.create_group(MEETING, forward_only=True)
            await alice.add_member(MEETING, "bob")
            session_key, epoch = os.urandom(32), 3
            envelope = seal(
                session_key + epoch.to_bytes(8, "big"),
                f"{MEETING}/session-key/{epoch}".encode(),
                [group_key],
                alice.ks.signing_key,  # type: ignore[arg-type]
            )
            await alice.register_group_value(
                MEETING, envelope.edeks[0].to_bytes(), members=["alice", "bob"]
            )
            # Managed documents for bob: a chat message and a recording (a stream).
            chat = await alice.encrypt_document("chat-1", b"hello from alice", users=["bob"])
            recording, sink = os.urandom(5000), io.BytesIO()
            await alice.encrypt_stream(
                "rec-1", io.BytesIO(recording), sink, users=["bob"], chunk_size=2048
            )

            def job(user: str, user_key: bytes) -> dict[str, Any]:
                return {
                    "base_url": base,
                    "jwt": idp.issue(user, "sealroom-keyservice"),
                    "user_private_key": user_key.hex(),
                    "meeting": MEETING,
                    "envelope": b64e(envelope.to_bytes()),
                    "epoch": epoch,
                }

            bob_key = (await bob._user_key()).expose_secret_bytes()
            documents = {"document": b64e(chat.to_bytes()), "stream": b64e(sink.getvalue())}
            code, out = await _node(node, job("bob", bob_key) | documents)
            assert code == 0, out
            assert out["session_key"] == session_key.hex()
            assert bytes.fromhex(out["document"]) == b"hello from alice"
            assert bytes.fromhex(out["stream"]) == recording
            devices = {d.id for d in await bob.list_devices()}
            assert out["device_id"] in devices  # registered at the real service
            assert len(devices) == 2

            carol_key = (await carol._user_key()).expose_secret_bytes()
            code, out = await _node(node, job("carol", carol_key))
            assert code == 1
            assert out["error"] == "not_member"

            # Bob's JWT with another user's key: the client refuses it, and so does the
            # service when the client does not check (the certificate is not bob's).
            code, out = await _node(node, job("bob", carol_key))
            assert (code, out["error"]) == (1, "client_refused")
            code, out = await _node(node, job("bob", carol_key) | {"unchecked": True})
            assert code == 1
            assert out["error"] == "forbidden", out
            assert len({d.id for d in await bob.list_devices()}) == 2


def test_a_node_device_unwraps_a_session_key_through_the_live_key_service(tmp_path: Path) -> None:
    node = node_or_skip()
    asyncio.run(_scenario(node, tmp_path))
