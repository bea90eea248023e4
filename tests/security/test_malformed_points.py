"""Malformed curve points in what clients upload: a public key, a transform key or an EDEK
carrying the identity, a point off the curve, a point on the curve outside the prime-order
subgroup, or a GT value outside GT. The key service refuses each with ``malformed_input``
(never a 500), records the refusal, and changes nothing. (This held before issue 9;
tests/crypto/test_pre_adversarial.py checks the decoders themselves.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.pre import (
    derive_private_key,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
)
from sealroom.crypto.signing import SigningKey
from tests.crypto import curve_helpers as ch
from tests.security.live_keyservice import device_keys, live_keyservice, state

G1_BAD = {
    "G1 identity": bytes(48),
    "G1 off the curve": ch.g1_not_on_curve(),
    **{f"G1 outside the subgroup #{i}": p for i, p in enumerate(ch.g1_on_curve_not_in_subgroup())},
}
G2_BAD = {
    "G2 identity": bytes(96),
    "G2 off the curve": ch.g2_not_on_curve(),
    **{f"G2 outside the subgroup #{i}": p for i, p in enumerate(ch.g2_on_curve_not_in_subgroup())},
}
GT_BAD = {"GT unitary outside GT": ch.gt_unitary_not_in_gt(3), "GT -1": ch.gt_minus_one()}

# Offsets in the wire objects (docs/crypto.md §6): a public key's G1; an encrypted value's
# R (G1) and C (GT); a transform key's X (G1), E (GT) and H (G2).
KEY_G1, EDEK_R, EDEK_C, TK_X, TK_E, TK_H = 2, 3, 51, 2, 146, 722

Send = Callable[[bytes], httpx.Response]


def _splice(raw: bytes, offset: int, part: bytes) -> bytes:
    return raw[:offset] + part + raw[offset + len(part) :]


def test_malformed_points_in_uploaded_keys_and_edeks_are_refused(tmp_path: Path) -> None:
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as alice,
        ks.client("bob") as bob,
    ):
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        signer, device = device_keys(alice)
        # Genuine objects, into which the bad points go.
        _, device_public = generate_key_pair()
        public = device_public.to_bytes()
        registration = alice.client._registration(
            alice._run(alice.client._user_key()),
            "dev-new",
            "new",
            SigningKey.generate().verifying_key.to_bytes(),
            device_public,
        )
        device_tk = b64d(registration["transform_key"])
        group_key = derive_private_key(alice._run(alice.client._group_seed("team")))
        bob_key = alice.user_public_keys(["bob"])["bob"]
        member_tk = generate_transform_key(group_key, bob_key, signer).key.to_bytes()
        edek = encrypt(generate_plaintext(), alice.group_public_key("team"), signer).to_bytes()

        def as_user(user: str, path: str, body: dict[str, Any]) -> httpx.Response:
            token = ks.token(user)
            content = json.dumps(body).encode()
            return ks.http.post(path, content=content, headers={"authorization": f"Bearer {token}"})

        def as_device(method: str, path: str, body: dict[str, Any]) -> httpx.Response:
            return ks.signed(signer, device, method, path, body=json.dumps(body).encode())

        new_user: Send = lambda key: as_user(  # noqa: E731
            "newcomer",
            "/v1/users",
            {
                "public_key": b64e(key),
                "signing_key": b64e(SigningKey.generate().verifying_key.to_bytes()),
                "escrow_blob": b64e(b"x" * 100),
            },
        )
        new_device_key: Send = lambda key: as_user(  # noqa: E731
            "alice", "/v1/devices", {**registration, "public_key": b64e(key)}
        )
        new_device_tk: Send = lambda tk: as_user(  # noqa: E731
            "alice", "/v1/devices", {**registration, "transform_key": b64e(tk)}
        )
        new_group: Send = lambda key: as_device(  # noqa: E731
            "POST",
            "/v1/groups",
            {"id": "rogue", "public_key": b64e(key), "encrypted_group_key": b64e(edek)},
        )
        new_member: Send = lambda tk: as_device(  # noqa: E731
            "PUT", "/v1/groups/team/members/bob", {"transform_key": b64e(tk)}
        )
        transform: Send = lambda value: as_device(  # noqa: E731
            "POST",
            "/v1/transform",
            {"edek": b64e(value), "target": {"kind": "group", "id": "team"}},
        )
        document: Send = lambda value: as_device(  # noqa: E731
            "POST",
            "/v1/documents",
            {"id": "doc", "grants": [{"kind": "group", "id": "team", "edek": b64e(value)}]},
        )
        # (where, genuine object, offset, bad encodings, how it is sent)
        places: list[tuple[str, bytes, int, dict[str, bytes], Send]] = [
            ("a new user's public key", public, KEY_G1, G1_BAD, new_user),
            ("a device's public key", public, KEY_G1, G1_BAD, new_device_key),
            ("a device transform key's X", device_tk, TK_X, G1_BAD, new_device_tk),
            ("a device transform key's E", device_tk, TK_E, GT_BAD, new_device_tk),
            ("a device transform key's H", device_tk, TK_H, G2_BAD, new_device_tk),
            ("a group's public key", public, KEY_G1, G1_BAD, new_group),
            ("a member transform key's H", member_tk, TK_H, G2_BAD, new_member),
            ("an EDEK's R, to transform", edek, EDEK_R, G1_BAD, transform),
            ("an EDEK's C, to transform", edek, EDEK_C, GT_BAD, transform),
            ("an EDEK's R, as a document grant", edek, EDEK_R, G1_BAD, document),
        ]

        before, audited = state(ks.parts.db), len(ks.audit())
        wrong, sent = [], 0
        for where, genuine, offset, encodings, send in places:
            for name, bad in encodings.items():
                r = send(_splice(genuine, offset, bad))
                sent += 1
                if (r.status_code, r.json().get("code")) != (400, "malformed_input"):
                    wrong.append(f"{where}, {name}: {r.status_code} {r.text[:100]}")
        assert wrong == []
        assert state(ks.parts.db) == before
        refusals = [e["outcome"] for e in ks.audit()[audited:]]
        assert refusals == ["refused:malformed_input"] * sent
        # The genuine objects go through, so each refusal was the point's doing.
        assert new_member(member_tk).status_code == 200
        assert transform(edek).status_code == 200
