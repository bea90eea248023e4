"""Known answers both ways between Python and the web core (web/).

Python writes the cases with the real project code (tests/web/kat.py) into a fresh
directory; ``node --test`` runs every web test on them (the RFC 9605 vectors and the unit
tests too) and writes what JavaScript made; then each test here checks those values with
the Python code, and checks that Python refuses them once tampered.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sealroom.api.encoding import b64d
from sealroom.api.identity import DEVICE_CERT_LABEL, device_certificate_message
from sealroom.api.reqsig import parse_headers
from sealroom.crypto.envelope import Envelope, open_with_key
from sealroom.crypto.pairing import GT
from sealroom.crypto.pre import (
    EncryptedValue,
    PrivateKey,
    PublicKey,
    TransformKey,
    augment_transform_key,
    decrypt,
    derive_symmetric_key,
    encrypt,
    generate_plaintext,
    transform,
)
from sealroom.crypto.signing import VerifyingKey
from sealroom.crypto.stream import open_stream, read_header
from sealroom.errors import DecryptionError, MalformedInputError, SealroomError, SignatureError
from sealroom.media.keys import FrameRejectedError, Receiver
from sealroom.meeting.messages import BoardMessage
from tests.web.kat import write_cases
from tests.web.node import NodeRun, node_or_skip, run_node
from tests.web.session_cases import write_cases as write_session_cases

H = bytes.fromhex


class Js:
    """One node run on freshly made cases: its counts, the cases, what JavaScript made."""

    def __init__(
        self, run: NodeRun, cases: dict[str, Any], made: dict[str, Any], world: Any
    ) -> None:
        self.run, self.cases, self.made, self.world = run, cases, made, world


@pytest.fixture(scope="module")
def js(tmp_path_factory: pytest.TempPathFactory) -> Js:
    node = node_or_skip()
    directory: Path = tmp_path_factory.mktemp("kat")
    written = write_cases(directory)
    sessions = write_session_cases(directory)
    env = {"SEALROOM_KAT_DIR": str(directory), "SEALROOM_SESSION_CASES": str(sessions)}
    run = run_node(node, ["--test", "--test-reporter=tap", "test/"], env)
    assert run.returncode == 0, run.output[-8000:]
    assert run.failed == 0, run.output[-8000:]
    made = json.loads((directory / "js-made.json").read_text())
    return Js(run, written["cases"], made, written["world"])


def test_node_passes_every_known_answer_and_the_rfc_vectors(js: Js) -> None:
    assert js.run.skipped == 0, js.run.output[-4000:]
    assert js.run.passed >= 30, js.run.output[-4000:]
    for name in (
        "every tampered EDEK is refused",
        "C.3 SFrame encryption",
        "C.1 header encoding",
        "each blob opens to the user key",  # escrow, for a browser that signs in without
    ):
        assert re.search(rf"^\s*ok \d+ - {re.escape(name)}", js.run.output, re.MULTILINE), name


def test_the_web_session_replays_the_python_sessions_boards(js: Js) -> None:
    """Meetings played by real MeetingSessions (tests/web/session_cases.py), replayed into
    the web client's participant session: the same actions, byte for byte, and the same
    states after each step; and the media payload packs the same bytes in both languages."""
    for name in ("basics", "late_and_lost", "managers", "JavaScript packs the same bytes"):
        assert re.search(rf"^\s*ok \d+ - {re.escape(name)}", js.run.output, re.MULTILINE), name


def test_javascript_gt_elements_are_in_gt(js: Js) -> None:
    for raw in js.made["random_gt"]:
        GT.from_bytes(H(raw))


def test_python_decrypts_what_javascript_encrypted(js: Js) -> None:
    w, pre = js.world, js.made["pre"]
    signer = VerifyingKey.from_bytes(H(pre["signer"]))
    value = EncryptedValue.from_bytes(H(pre["to_python_device"]))
    plaintext = decrypt(value, w.device_priv, origin_signer=signer)
    assert plaintext.expose_secret_bytes().hex() == pre["plaintext"]
    assert derive_symmetric_key(plaintext).expose_secret_bytes().hex() == pre["dek"]
    group = PrivateKey.from_secret_bytes(H(pre["js_group_private_key"]))
    other = decrypt(EncryptedValue.from_bytes(H(pre["to_js_group"])), group, origin_signer=signer)
    assert other == plaintext
    with pytest.raises(DecryptionError):
        decrypt(value, w.device_priv, origin_signer=w.mallory.verifying_key)
    tampered = bytearray(H(pre["to_python_device"]))
    tampered[627] ^= 1  # the auth hash
    with pytest.raises(DecryptionError):
        decrypt(EncryptedValue.from_bytes(bytes(tampered)), w.device_priv, origin_signer=signer)


def test_a_transform_key_javascript_made_works_in_the_real_transform_path(js: Js) -> None:
    """The user (key from Python) delegates to a device JavaScript made; the service
    augments the key, transforms a value to that device, and the device decrypts it."""
    w, pre = js.world, js.made["pre"]
    key = TransformKey.from_bytes(H(pre["transform_key"]))
    with pytest.raises(SignatureError):
        key.verify(w.mallory.verifying_key)
    verified = key.verify(w.user_signer.verifying_key)
    assert key.to_public_key == PublicKey.from_bytes(H(pre["js_device_public_key"]))
    augmented = augment_transform_key(verified, w.secret, w.service)
    plaintext = generate_plaintext()
    level2 = transform(
        encrypt(plaintext, w.group_pub, w.admin), [w.group_to_user, augmented], w.service
    )
    device = PrivateKey.from_secret_bytes(H(pre["js_device_private_key"]))
    opened = decrypt(
        level2, device, origin_signer=w.admin.verifying_key, transformer=w.service.verifying_key
    )
    assert opened == plaintext


def test_python_opens_javascript_envelopes_and_streams(js: Js) -> None:
    w, env = js.world, js.made["envelope"]
    sealer = VerifyingKey.from_bytes(H(env["signer"]))
    envelope = Envelope.from_bytes(H(env["envelope"]))
    assert (
        open_with_key(envelope, envelope.edeks[0], w.device_priv, origin_signer=sealer).hex()
        == env["data"]
    )
    with pytest.raises(DecryptionError):
        open_with_key(
            envelope, envelope.edeks[0], w.device_priv, origin_signer=w.admin.verifying_key
        )
    src = io.BytesIO(H(env["stream"]))
    head = read_header(src)
    source = decrypt(head[0].edeks[0], w.device_priv, origin_signer=sealer)
    out = io.BytesIO()
    open_stream(src, out, head, source, sealer=sealer)
    assert out.getvalue().hex() == env["stream_data"]
    truncated = io.BytesIO(H(env["stream"])[:-65])
    with pytest.raises(DecryptionError):
        open_stream(truncated, io.BytesIO(), read_header(truncated), source, sealer=sealer)


def test_python_receives_javascript_sframe_frames_in_every_suite(js: Js) -> None:
    assert sorted(s["suite"] for s in js.made["sframe"]) == [1, 2, 3, 4, 5]
    for s in js.made["sframe"]:
        rx = Receiver(suite=s["suite"])
        rx.install(s["epoch"], H(s["session_key"]), 0.0)
        for f in s["frames"]:
            got = rx.decrypt(H(f["metadata"]), H(f["frame"]), 0.0)
            assert got == (s["epoch"], s["sender"], H(f["plaintext"]))
        with pytest.raises(FrameRejectedError):  # replayed
            rx.decrypt(H(s["frames"][3]["metadata"]), H(s["frames"][3]["frame"]), 0.0)
        other = Receiver(suite=s["suite"])
        other.install(s["epoch"], bytes(32), 0.0)
        with pytest.raises(FrameRejectedError):  # another session key
            other.decrypt(H(s["frames"][0]["metadata"]), H(s["frames"][0]["frame"]), 0.0)


def test_python_verifies_javascript_board_messages_byte_for_byte(js: Js) -> None:
    made = js.made["messages"]
    key = VerifyingKey.from_bytes(H(made["verifying_key"]))
    assert len(made["wires"]) == 3
    for wire in made["wires"]:
        message = BoardMessage.from_json(wire)
        message.verify(key)
        assert message.to_json() == wire  # the same canonical text in both languages
        tampered = json.loads(wire) | {"seq": message.seq + 1}
        with pytest.raises(SignatureError):
            BoardMessage.from_json(json.dumps(tampered)).verify(key)


def test_python_verifies_javascript_request_signatures(js: Js) -> None:
    made = js.made["requests"]
    key = VerifyingKey.from_bytes(H(made["verifying_key"]))
    for r in made["signed"]:
        signed = parse_headers(r["headers"])
        assert signed is not None
        assert signed.device_id == made["device"]
        signed.verify(key, r["method"], r["path"], r["query"], H(r["body"]))
        with pytest.raises(SignatureError):
            signed.verify(key, r["method"], r["path"] + "x", r["query"], H(r["body"]))


def test_a_javascript_registration_is_one_the_key_service_accepts(js: Js) -> None:
    """The certificate and the user→device transform key verify under the user's signing
    key, as the key service checks them."""
    w, body = js.world, js.made["registration"]
    public = PublicKey.from_bytes(b64d(body["public_key"]))
    message = device_certificate_message(
        body["device_id"], b64d(body["signing_key"]), public.to_bytes()
    )
    w.user_signer.verifying_key.verify(DEVICE_CERT_LABEL, message, b64d(body["certificate"]))
    key = TransformKey.from_bytes(b64d(body["transform_key"])).verify(w.user_signer.verifying_key)
    assert key.key.to_public_key == public
    assert key.key.from_public_key == w.user_priv.public_key()
    with pytest.raises((SignatureError, MalformedInputError, SealroomError)):
        w.user_signer.verifying_key.verify(
            DEVICE_CERT_LABEL, message + b"x", b64d(body["certificate"])
        )
