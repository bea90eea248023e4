"""Requests in someone else's name: a forged device signature or JWT, a tampered request, a
captured request sent again. Each is refused before it reaches an operation, and changes
nothing. (These held before issue 9; tests/keyservice/test_authorization.py checks each
refusal's code through the ASGI app, these go through a live server.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from sealroom.api.reqsig import sign_request
from sealroom.crypto.signing import SigningKey
from tests.security.live_keyservice import device_keys, live_keyservice, state


def test_stranger_cannot_forge_a_devices_request_signature(tmp_path: Path) -> None:
    with (
        live_keyservice(tmp_path) as ks,
        ks.client("alice") as alice,
        ks.client("alice", "phone") as phone,
    ):
        alice.initialize()
        phone.initialize()
        signer, laptop = device_keys(alice)
        _, phone_id = device_keys(phone)
        alice.encrypt_document("notes", b"x", users=["alice"])
        before = state(ks.parts.db)

        # Mallory's own key, naming alice's laptop: revoke alice's phone, grant herself.
        mallory = SigningKey.generate()
        revoke = ks.signed(mallory, laptop, "POST", f"/v1/devices/{phone_id}/revoke", body=b"{}")
        assert (revoke.status_code, revoke.json()["code"]) == (401, "bad_signature")
        # Alice's genuine signature over one body, sent with another.
        headers = sign_request(
            signer,
            laptop,
            method="POST",
            path=f"/v1/devices/{phone_id}/revoke",
            query="",
            body=json.dumps({"proof": "AA"}).encode(),
            now=time.time(),
        )
        swapped = ks.http.post(f"/v1/devices/{phone_id}/revoke", content=b"{}", headers=headers)
        assert (swapped.status_code, swapped.json()["code"]) == (401, "bad_signature")
        # A JWT for alice signed by a key the IdP never published.
        claims = {
            "iss": ks.idp.issuer,
            "sub": "alice",
            "aud": "sealroom-keyservice",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        }
        forged = jwt.encode(
            claims, ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": ks.idp.kid}
        )
        r = ks.http.get("/v1/users/me", headers={"authorization": f"Bearer {forged}"})
        assert (r.status_code, r.json()["code"]) == (401, "invalid_token")

        assert state(ks.parts.db) == before
        assert [d.revoked_at for d in alice.list_devices()] == [None, None]


def test_captured_request_cannot_be_replayed(tmp_path: Path) -> None:
    clock = [time.time()]
    with (
        live_keyservice(tmp_path, clock=lambda: clock[0]) as ks,
        ks.client("alice") as alice,
        ks.client("bob") as bob,
    ):
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        signer, laptop = device_keys(alice)
        removal = ("DELETE", "/v1/groups/team/members/bob")
        nonce, sent_at = b"\x09" * 16, clock[0]
        assert ks.signed(signer, laptop, *removal, now=sent_at, nonce=nonce).status_code == 200
        alice.add_member("team", "bob")  # bob is back; someone replays the removal
        before = state(ks.parts.db)

        again = ks.signed(signer, laptop, *removal, now=sent_at, nonce=nonce)
        assert (again.status_code, again.json()["code"]) == (401, "replayed_request")
        clock[0] += 600  # long after: its nonce is forgotten, its timestamp is not
        later = ks.signed(signer, laptop, *removal, now=sent_at, nonce=nonce)
        assert (later.status_code, later.json()["code"]) == (401, "stale_request")

        assert state(ks.parts.db) == before  # bob is still a member
