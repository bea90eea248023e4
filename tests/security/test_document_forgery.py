"""Authorship: a recipient knows a sealed object's DEK, so it can seal other content under the
same object id and sign it with its own device. Opening must name the true sealer and, by
default, refuse content that the owner's devices did not seal.

Each forgery here is made the way a member of the recipient group would make it: unwrap the
DEK source through its own grant, then seal under that source with its own signing key.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto import envelope as envelope_module
from sealroom.crypto import labels
from sealroom.crypto import stream as stream_module
from sealroom.crypto.envelope import Envelope, seal
from sealroom.crypto.pre import Plaintext
from sealroom.crypto.stream import seal_stream
from sealroom.sdk import (
    AuthorshipError,
    OpenedDocument,
    OpenedStream,
    Sealer,
    ServiceRefusedError,
    SyncClient,
    Target,
)
from tests.security.live_keyservice import (
    LiveKeyService,
    device_keys,
    live_keyservice,
    resigned_as_own,
)


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[LiveKeyService, SyncClient, SyncClient, SyncClient]]:
    """Alice owns group 'team'; bob and mallory are members."""
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as alice,
        ks.client("bob") as bob,
        ks.client("mallory") as mallory,
    ):
        for c in (alice, bob, mallory):
            c.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        alice.add_member("team", "mallory")
        yield ks, alice, bob, mallory


def _sealer(client: SyncClient) -> Sealer:
    return Sealer(client.client.user_id, client.client.device_id)


def _reseal(
    monkeypatch: pytest.MonkeyPatch, forger: SyncClient, source: Plaintext, object_id: bytes
) -> Envelope:
    """Other text sealed under a known DEK source and object id, signed by ``forger``."""
    monkeypatch.setattr(envelope_module, "generate_plaintext", lambda: source)
    team_key = forger.group_public_key("team")
    return seal(b"meet at midnight, bring the keys", object_id, [team_key], device_keys(forger)[0])


def test_recipient_cannot_forge_a_document_in_the_sealers_name(
    team: tuple[LiveKeyService, SyncClient, SyncClient, SyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, alice, bob, mallory = team
    chat = alice.encrypt_document("chat-1", b"meet at noon", groups=["team"])
    source = mallory._run(mallory.client._unwrap_for("chat-1"))  # mallory may read it
    forged = _reseal(monkeypatch, mallory, source, b"chat-1")

    with pytest.raises(AuthorshipError) as refused:
        bob.decrypt_document(forged)
    assert refused.value.sealer == _sealer(mallory)
    assert refused.value.owner == "alice"
    assert "midnight" not in str(refused.value)
    with pytest.raises(AuthorshipError):
        bob.open_document(forged)

    # The genuine message names its sealer; an application that accepts content sealed by
    # other certified devices sees the forgery as mallory's, never as alice's.
    assert bob.open_document(chat) == OpenedDocument(b"meet at noon", _sealer(alice), "alice")
    shown = bob.open_document(forged, any_sealer=True)
    assert (shown.sealer, shown.owner) == (_sealer(mallory), "alice")
    assert "midnight" not in repr(shown)


def test_recipient_cannot_forge_a_stream_in_the_sealers_name(
    team: tuple[LiveKeyService, SyncClient, SyncClient, SyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, alice, bob, mallory = team
    genuine = io.BytesIO()
    alice.encrypt_stream("rec-1", io.BytesIO(b"r" * 40_000), genuine, groups=["team"])
    source = mallory._run(mallory.client._unwrap_for("rec-1"))
    monkeypatch.setattr(stream_module, "generate_plaintext", lambda: source)
    forged = io.BytesIO()
    seal_stream(
        io.BytesIO(b"f" * 40_000),
        forged,
        b"rec-1",
        [mallory.group_public_key("team")],
        device_keys(mallory)[0],
    )

    out = io.BytesIO()
    with pytest.raises(AuthorshipError) as refused:
        bob.decrypt_stream(io.BytesIO(forged.getvalue()), out)
    assert refused.value.sealer == _sealer(mallory)
    assert out.getvalue() == b""  # not one forged byte released

    assert bob.decrypt_stream(io.BytesIO(genuine.getvalue()), out) == OpenedStream(
        40_000, _sealer(alice), "alice"
    )
    assert out.getvalue() == b"r" * 40_000
    shown = bob.decrypt_stream(io.BytesIO(forged.getvalue()), io.BytesIO(), any_sealer=True)
    assert shown.sealer == _sealer(mallory)


def test_recipient_cannot_forge_a_message_in_the_sealers_name(
    team: tuple[LiveKeyService, SyncClient, SyncClient, SyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unmanaged message has no owner at the service: its keys' maker is its owner. The
    # forger keeps alice's EDEKs (so the key still comes from alice) and signs the rest.
    _, alice, bob, mallory = team
    message = alice.encrypt_document("msg-1", b"meet at noon", groups=["team"], managed=False)
    target = {"kind": "group", "id": "team"}
    moved = mallory._call("POST", "/v1/transform", {"edek": _b64(message), "target": target})
    source = mallory._run(mallory.client._unwrap(b64d(moved["edek"], "edek")))
    resealed = _reseal(monkeypatch, mallory, source, b"msg-1")
    unsigned = replace(resealed, edeks=message.edeks)
    signer = device_keys(mallory)[0]
    forged = replace(unsigned, signature=signer.sign(labels.SIG_ENVELOPE, unsigned.signed_part()))

    with pytest.raises(AuthorshipError) as refused:
        bob.decrypt_unmanaged(forged, 0, Target.group("team"))
    assert refused.value.sealer == _sealer(mallory)
    opened = bob.open_unmanaged(message, 0, Target.group("team"))
    assert (opened.data, opened.sealer, opened.owner) == (b"meet at noon", _sealer(alice), "alice")
    # With keys of her own, the message is simply mallory's, and says so.
    assert bob.open_unmanaged(resealed, 0, Target.group("team")).sealer == _sealer(mallory)


def test_member_cannot_take_over_the_sealers_message_as_its_own_document(
    team: tuple[LiveKeyService, SyncClient, SyncClient, SyncClient],
) -> None:
    # Mallory files alice's unmanaged message under its id, as a document she owns, to
    # control its grants. The key service refuses a grant key no device of hers signed.
    ks, alice, bob, mallory = team
    message = alice.encrypt_document("msg-2", b"x", groups=["team"], managed=False)
    edek = message.edeks[0].to_bytes()

    def file_as_document(doc_id: str, grant_key: bytes) -> None:
        grant = {"kind": "group", "id": "team", "edek": b64e(grant_key)}
        mallory._call("POST", "/v1/documents", {"id": doc_id, "grants": [grant]})

    with pytest.raises(ServiceRefusedError) as refused:
        file_as_document("msg-2", edek)
    assert refused.value.code == "forbidden"
    with ks.parts.db.transaction() as tx:
        assert tx.one("SELECT id FROM documents WHERE id = 'msg-2'") is None
    mallory.encrypt_document("mine", b"y", users=["mallory"])
    with pytest.raises(ServiceRefusedError) as refused:  # nor as a grant of her own document
        mallory._call("PUT", "/v1/documents/mine/grants/group/team", {"edek": b64e(edek)})
    assert refused.value.code == "forbidden"

    # An origin signature covers only (R, auth), so she can sign alice's EDEK as her own and
    # file that. She then owns the id, but alice's message still names alice as its sealer
    # and is refused as a document of mallory's: it is never shown as hers.
    file_as_document("msg-2", resigned_as_own(edek, mallory))
    with pytest.raises(AuthorshipError) as wrong_owner:
        bob.decrypt_document(message)
    assert (wrong_owner.value.owner, wrong_owner.value.sealer) == ("mallory", _sealer(alice))


def test_key_service_naming_another_owner_is_refused(
    team: tuple[LiveKeyService, SyncClient, SyncClient, SyncClient],
) -> None:
    # A hostile service (or a database insider) lists mallory as the owner of alice's
    # document. The client names the owner from the grant key's signer, and refuses.
    ks, alice, bob, _ = team
    chat = alice.encrypt_document("chat-2", b"meet at noon", groups=["team"])
    with ks.parts.db.transaction() as tx:
        tx.execute("UPDATE documents SET owner = 'mallory' WHERE id = 'chat-2'")
    with pytest.raises(AuthorshipError) as refused:
        bob.decrypt_document(chat)
    assert refused.value.sealer is None
    assert refused.value.owner == "alice"


def _b64(message: Envelope) -> str:
    return b64e(message.edeks[0].to_bytes())
