"""The OpenAPI document is drawn from typed models, and the service keeps to them: a whole
flow through the SDK, every request body and every answer checked against its endpoint's
model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.routing import Match

from sealroom.api.encoding import b64e
from sealroom.crypto.pre import encrypt, generate_plaintext
from sealroom.keyservice import models
from sealroom.keyservice.app import build, openapi
from sealroom.sdk import ServiceRefusedError, Target

from .conftest import Env

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
def test_every_body_and_answer_has_a_typed_schema(env: Env) -> None:
    spec = openapi(build(env.parts))
    schemas = spec["components"]["schemas"]
    typed = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            answer = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert answer["$ref"].startswith("#/components/schemas/"), (method, path)
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                for name, prop in schemas[ref.rsplit("/", 1)[1]]["properties"].items():
                    assert prop, (method, path, name)  # no untyped property
                    typed += 1
    assert typed >= 32
    assert "rate_limited" in schemas["ProblemCode"]["enum"]


class _Recorder:
    """An ASGI wrapper that keeps each request's method, path, body, status and answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, bytes, int, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        status = [0]
        answer: list[bytes] = []

        async def recv() -> Any:
            nonlocal body
            message = await receive()
            body += message.get("body", b"")
            return message

        async def snd(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recv, snd)
        self.seen.append((scope["method"], scope["path"], body, status[0], b"".join(answer)))


@SQLITE
def test_a_whole_flow_keeps_to_the_models(make_env: Callable[..., Env], database_url: str) -> None:
    env = make_env(database_url, auditors=("alice",))
    recorder = _Recorder(env.app)
    env.app = recorder  # type: ignore[assignment]
    try:
        with env.client("alice") as alice, env.client("bob") as bob, env.client("carl") as carl:
            for c in (alice, bob, carl):
                c.initialize()
            alice.create_group("team")
            alice.add_member("team", "bob")
            alice.add_members("team", ["carl"])
            alice.preapprove("team", ["dora"])
            alice.add_admin("team", "bob")
            alice.remove_admin("team", "bob")
            alice.group("team")
            carl.group("team")
            alice.find_user_keys(["alice", "bob", "nobody"])
            doc = alice.encrypt_document("notes", b"agenda", groups=["team"])
            assert bob.decrypt_document(doc) == b"agenda"
            alice.grant("notes", Target.user("carl"))
            alice.revoke("notes", Target.user("carl"))
            alice.remove_member("team", "carl")
            alice.create_group("meeting", forward_only=True)
            alice.add_member("meeting", "bob")
            signer = alice.client.ks.signing_key
            assert signer is not None
            edek = encrypt(generate_plaintext(), alice.group_public_key("meeting"), signer)
            alice.register_group_value("meeting", edek.to_bytes(), members=["alice", "bob"])
            alice.claim_group_management("meeting")
            alice.ban_member("meeting", "carl")
            alice.lift_ban("meeting", "carl")
            body = {"edek": b64e(edek.to_bytes()), "target": {"kind": "group", "id": "meeting"}}
            bob._call("POST", "/v1/transform", body)
            bob._call("POST", "/v1/transform/batch", {"items": [body, body]})
            bob.list_devices()
            bob.rotate_device()
            alice.verify_audit()
            alice._call("GET", "/v1/audit", query="limit=5")
            alice._call("GET", f"/v1/devices/{bob.client.device_id}")
            with pytest.raises(ServiceRefusedError, match="malformed_input"):
                alice._call("POST", "/v1/groups/team/values", {"edek": "AA", "members_digest": 7})
            alice.delete_group("team")
    finally:
        env.app = recorder.app
        env.close()

    endpoints = build(env.parts)
    routes = {(ep.method, ep.path): ep for ep in endpoints}
    from starlette.routing import Route

    checked: set[tuple[str, str]] = set()
    for method, path, body, status, answer in recorder.seen:
        ep = None
        for (m, template), candidate in routes.items():
            if m != method:
                continue
            match, _ = Route(template, lambda r: None, methods=[m]).matches(
                {"type": "http", "path": path, "method": method}
            )
            if match == Match.FULL:
                ep = candidate
                break
        assert ep is not None, (method, path)
        if status == 200:
            models.check(ep.response, json.loads(answer), "answer")
            if ep.request is not None:
                models.check(ep.request, json.loads(body))
            checked.add((ep.method, ep.path))
        else:
            problem = json.loads(answer)
            models.check(models.Problem, problem, "problem")
            if ep.request is not None and status == 400:  # a body that does not fit the model
                with pytest.raises(models.ModelError):
                    models.check(ep.request, json.loads(body))
    assert len(checked) >= 28, sorted(set(routes) - checked)
