"""End to end through the SDK: users, devices, groups, transforms, documents."""

from __future__ import annotations

import pytest

from sealroom.sdk import ServiceRefusedError

from .conftest import Env


def test_first_use_creates_user_and_device(env: Env) -> None:
    with env.client("alice") as alice:
        alice.initialize()
        assert alice.client.ks.registered
        devices = alice.list_devices()
        assert [d["name"] for d in devices] == ["laptop"]
        assert (env.tmp / "alice" / "laptop.json").stat().st_mode & 0o777 == 0o600


def test_group_document_roundtrip(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("team")
        alice.add_member("team", "bob")
        env_ = alice.encrypt_document("doc-1", b"minutes", groups=["team"])
        assert bob.decrypt_document(env_) == b"minutes"
        alice.remove_member("team", "bob")
        with pytest.raises(ServiceRefusedError) as exc:
            bob.decrypt_document(env_)
        assert exc.value.code == "forbidden"
