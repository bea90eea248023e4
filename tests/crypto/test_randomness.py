"""Every ephemeral value and temp key is fresh: no draw from the CSPRNG is ever reused."""

from __future__ import annotations

import pytest

from sealroom.crypto import envelope, escrow
from sealroom.crypto import pairing as pr
from sealroom.crypto.pre import (
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
    transform,
)

from .conftest import World


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    seen: list[bytes] = []
    real = pr._urandom

    def watch(n: int) -> bytes:
        out = real(n)
        seen.append(out)
        return out

    monkeypatch.setattr(pr, "_urandom", watch)
    return seen


def test_no_draw_is_reused_across_operations(world: World, draws: list[bytes]) -> None:
    pt = generate_plaintext()
    for _ in range(3):
        generate_key_pair()
        ev = encrypt(pt, world.group_pub, world.admin)
        transform(ev, [world.group_to_user, world.user_to_device], world.service)
        generate_transform_key(world.group_priv, world.user_pub, world.admin)
        envelope.seal(b"data", b"id", [world.group_pub], world.admin)
    escrow.seal_private_key(world.group_priv, escrow.EscrowSecret(b"pw"), "pbkdf2")
    assert len(draws) > 50
    assert len(set(draws)) == len(draws)


def test_encrypting_twice_gives_fresh_ephemerals(world: World) -> None:
    pt = generate_plaintext()
    values = [encrypt(pt, world.group_pub, world.admin) for _ in range(4)]
    assert len({v.ephemeral_public_key.to_bytes() for v in values}) == 4
    assert len({v.encrypted_message.to_bytes() for v in values}) == 4


def test_transform_keys_get_fresh_temp_keys(world: World) -> None:
    keys = [
        generate_transform_key(world.group_priv, world.user_pub, world.admin).key for _ in range(3)
    ]
    assert len({k.ephemeral_public_key.to_bytes() for k in keys}) == 3
    assert len({k.encrypted_temp_key.to_bytes() for k in keys}) == 3
    assert len({k.hashed_temp_key.to_bytes() for k in keys}) == 3


def test_each_transform_rerandomizes(world: World) -> None:
    ev = encrypt(generate_plaintext(), world.group_pub, world.admin)
    outs = [transform(ev, [world.group_to_user], world.service) for _ in range(3)]
    assert len({o.blocks[0].random_transform_public_key.to_bytes() for o in outs}) == 3
    assert len({o.blocks[0].encrypted_random_transform_temp_key.to_bytes() for o in outs}) == 3
    assert len({o.encrypted_message.to_bytes() for o in outs}) == 3


def test_plaintexts_and_key_pairs_are_fresh() -> None:
    assert len({generate_plaintext().expose_secret_bytes() for _ in range(4)}) == 4
    assert len({generate_key_pair()[1].to_bytes() for _ in range(4)}) == 4
