"""The AsyncAPI description of the channel is drawn from typed models and holds to what
the protocol core and the relay really send."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sealroom.conference import asyncapi
from sealroom.conference.app import ConferenceSettings, create_conference_app
from sealroom.conference.board import RefusalCode
from sealroom.idp import DevIdp
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.models import check
from sealroom.meeting.messages import KINDS
from tests.meeting.test_random_meetings import _play

SRC = Path(__file__).parents[2] / "src" / "sealroom" / "conference"


def test_every_kind_has_a_body_model() -> None:
    assert set(asyncapi.BODIES) == set(KINDS)
    kind = typing.get_type_hints(asyncapi.BoardMessageModel)["kind"]
    assert set(typing.get_args(kind)) == set(KINDS)


def test_every_error_code_the_relay_sends_is_described() -> None:
    sent = set(typing.get_args(RefusalCode))
    for path in SRC.glob("*.py"):
        text = path.read_text()
        sent |= set(re.findall(r'await error\(\s*"([a-z_]+)"', text))
        sent |= set(re.findall(r'return "([a-z_]+)", ', text))
        sent |= set(re.findall(r'"code": "([a-z_]+)"', text))
    assert sent
    assert sent <= set(asyncapi.ERROR_CODES), sent - set(asyncapi.ERROR_CODES)


@pytest.mark.parametrize("seed", range(6))
def test_what_meetings_post_fits_the_models(seed: int) -> None:
    world = _play(seed, steps=60)
    seen = set()
    for message in world.board:
        wire = json.loads(message.to_json())
        check(asyncapi.BoardMessageModel, wire, "message")
        check(asyncapi.BODIES[message.kind], message.body, message.kind)
        seen.add(message.kind)
    assert {"start", "announce", "session-key"} <= seen


def test_the_document_is_served(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path / "idp")
    app = create_conference_app(ConferenceSettings(), JwksSource(document=idp.jwks))
    with TestClient(app) as client:
        doc = client.get("/asyncapi.json").json()
    assert doc["asyncapi"].startswith("3.")
    messages = doc["components"]["messages"]
    assert {f"body-{k}" for k in KINDS} <= set(messages)
    body = doc["components"]["schemas"]["SessionKeyBody"]
    fields = {"epoch", "reason", "ratchet", "envelope", "prev", "head", "added", "removed"}
    assert fields | {"parts", "reset"} <= set(body["properties"])
    assert set(doc["components"]["schemas"]["ErrorCode"]["enum"]) == set(asyncapi.ERROR_CODES)
    assert "card" in doc["components"]["schemas"]["AnnounceBody"]["properties"]


def test_every_kind_a_scripted_meeting_posts_fits_the_models() -> None:
    from sealroom.meeting.session import MeetingConfig
    from tests.meeting import harness
    from tests.meeting.harness import World

    saved, harness.TREE_THRESHOLD = harness.TREE_THRESHOLD, 1  # the key tree's kinds too
    try:
        w = World(MeetingConfig("m-1", host="uma", invitees=("bob", "carl", "dina")))
    finally:
        harness.TREE_THRESHOLD = saved
    for u in ("uma", "bob", "carl", "zed"):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    w.drop_board_for.add("bob")  # bob misses carl's join...
    w.run("carl", "join")
    w.drop_board_for.discard("bob")
    w.people["bob"].cursor = len(w.board)
    w.add("dina")
    w.run("dina", "join")  # ...asks for the roster (roster-request), and gets it (roster)
    w.run("zed", "join")  # not invited: knocks
    w.run("uma", "admit", "zed")
    w.run("uma", "remove", "carl")
    w.advance(30)
    w.run("uma", "admit", "carl")  # a removed user let back in: an admit post
    w.advance(5)
    w.run("uma", "end")
    kinds = set()
    for message in w.board:
        check(asyncapi.BoardMessageModel, json.loads(message.to_json()), "message")
        check(asyncapi.BODIES[message.kind], message.body, message.kind)
        kinds.add(message.kind)
    assert kinds >= set(KINDS) - {"leave", "manager"}  # those come from the random runs
