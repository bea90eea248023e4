"""Audit spam in a victim's name: requests that name a victim's device but do not
authenticate as it (a bad signature, a replay) must not fill the log as that device's
refusals. Until a request authenticates, its caller is anonymous: the claimed device goes
in the entry's object, under the anonymous cap."""

from __future__ import annotations

import time
from pathlib import Path

from sealroom.crypto.signing import SigningKey
from sealroom.keyservice.context import ANONYMOUS_REFUSALS_PER_SECOND
from tests.security.live_keyservice import device_keys, live_keyservice


def test_bad_signatures_naming_a_victim_device_are_capped(tmp_path: Path) -> None:
    clock = [time.time()]  # the service's clock stands still during the flood
    with live_keyservice(tmp_path, clock=lambda: clock[0]) as ks, ks.client("victim") as victim:
        victim.initialize()
        _, victim_device = device_keys(victim)
        mallory = SigningKey.generate()
        before = len(ks.audit())
        for _ in range(1000):
            r = ks.signed(mallory, victim_device, "GET", "/v1/devices", now=clock[0])
            assert r.json()["code"] == "bad_signature"
        added = ks.audit()[before:]
        assert len(added) <= ANONYMOUS_REFUSALS_PER_SECOND
        assert all(e["actor_user"] is None and e["actor_device"] is None for e in added)
        assert {e["object"] for e in added} == {f"device:{victim_device}"}

        clock[0] += 1  # the next second's first entry says how many were left out
        ks.signed(mallory, victim_device, "GET", "/v1/devices", now=clock[0])
        last = ks.audit()[-1]
        assert last["outcome"] == (
            f"refused:bad_signature (+{1000 - ANONYMOUS_REFUSALS_PER_SECOND} skipped)"
        )
        assert not any(e["actor_user"] == "victim" for e in ks.audit()[before:])


def test_replaying_a_victims_request_is_capped(tmp_path: Path) -> None:
    clock = [time.time()]
    with live_keyservice(tmp_path, clock=lambda: clock[0]) as ks, ks.client("victim") as victim:
        victim.initialize()
        signer, device = device_keys(victim)
        nonce = b"\x05" * 16
        body = b'{"user_ids": ["victim"]}'  # a signed POST (a GET keeps no nonce: a read)
        first = ks.signed(
            signer, device, "POST", "/v1/users/keys", body=body, now=clock[0], nonce=nonce
        )
        assert first.status_code == 200
        before = len(ks.audit())
        for _ in range(200):  # someone who captured it sends it again and again
            r = ks.signed(
                signer, device, "POST", "/v1/users/keys", body=body, now=clock[0], nonce=nonce
            )
            assert r.json()["code"] == "replayed_request"
        added = ks.audit()[before:]
        assert 0 < len(added) <= ANONYMOUS_REFUSALS_PER_SECOND
        assert all(e["actor_device"] is None for e in added)
        assert {e["object"] for e in added} == {f"device:{device}"}
