"""Issue 13's "done when": a program written only from docs/sdk.md runs a meeting, exports
the media keys to its own SFrame code, and reads a document on a newly approved device.

The program below uses only what docs/sdk.md documents (a test checks every name it
imports from Sealroom against the guide) and the dev IdP's documented HTTP API. Its SFrame
code is its own: RFC 9605's key schedule, header and AES-GCM, on ``cryptography``; it is
checked against the project's RFC 9605 implementation too, so it is not a private dialect.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hmac
import struct
import tempfile
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from sealroom.demo.services import Services
from sealroom.media.sframe import SFrameContext
from sealroom.sdk import (
    BasicSplitTrust,
    Client,
    Ended,
    Joined,
    KeyProvider,
    MeetingClient,
    MeetingConfig,
    SenderKey,
)

GUIDE = Path(__file__).parents[1] / "docs" / "sdk.md"


class OwnSFrame(KeyProvider):
    """An application's own SFrame (RFC 9605, suite 4, AES_128_GCM_SHA256_128 only), fed
    by Sealroom's key export."""

    SUITE = 4

    def __init__(self) -> None:
        self.keys: dict[int, tuple[AESGCM, int]] = {}  # kid -> (AEAD, salt)
        self.exported: list[SenderKey] = []
        self.retired: list[int] = []
        self.send: SenderKey | None = None
        self.counter = 0

    @staticmethod
    def _derive(kid: int, base_key: bytes) -> tuple[AESGCM, int]:
        secret = hmac.new(bytes(32), base_key, "sha256").digest()  # HKDF-Extract, no salt
        suffix = struct.pack(">QH", kid, OwnSFrame.SUITE)
        key = HKDFExpand(hashes.SHA256(), 16, b"SFrame 1.0 Secret key " + suffix).derive(secret)
        salt = HKDFExpand(hashes.SHA256(), 12, b"SFrame 1.0 Secret salt " + suffix).derive(secret)
        return AESGCM(key), int.from_bytes(salt, "big")

    def set_key(self, key: SenderKey) -> None:
        assert key.suite == self.SUITE
        self.keys[key.kid] = self._derive(key.kid, key.base_key)
        self.exported.append(key)

    def set_send_key(self, key: SenderKey) -> None:
        self.send, self.counter = key, 0

    def retire_epoch(self, epoch: int) -> None:
        self.retired.append(epoch)
        for kid in [k for k in self.keys if k >> 16 == epoch]:
            del self.keys[kid]

    @staticmethod
    def _varint(first_bits: int, value: int) -> tuple[int, bytes]:
        if value < 8:
            return first_bits | value, b""
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return first_bits | 0x08 | (len(raw) - 1), raw

    def protect(self, payload: bytes) -> bytes:
        assert self.send is not None
        kid, ctr = self.send.kid, self.counter
        self.counter += 1
        kid_bits, kid_raw = self._varint(0, kid)
        ctr_bits, ctr_raw = self._varint(0, ctr)
        header = bytes([(kid_bits << 4) | ctr_bits]) + kid_raw + ctr_raw
        aead, salt = self.keys[kid] if kid in self.keys else self._derive(kid, self.send.base_key)
        nonce = (salt ^ ctr).to_bytes(12, "big")
        return header + aead.encrypt(nonce, payload, header)

    def unprotect(self, frame: bytes) -> bytes:
        first, pos = frame[0], 1
        if first & 0x80:
            n = ((first >> 4) & 7) + 1
            kid, pos = int.from_bytes(frame[pos : pos + n], "big"), pos + n
        else:
            kid = (first >> 4) & 7
        if first & 0x08:
            n = (first & 7) + 1
            ctr, pos = int.from_bytes(frame[pos : pos + n], "big"), pos + n
        else:
            ctr = first & 7
        aead, salt = self.keys[kid]
        return aead.decrypt((salt ^ ctr).to_bytes(12, "big"), frame[pos:], frame[:pos])


async def _program(stack: Services, home: Path) -> None:
    def token_for(user: str):  # type: ignore[no-untyped-def]
        def token(audience: str) -> str:
            r = httpx.post(f"{stack.idp}/v1/token", json={"user_id": user, "audience": audience})
            r.raise_for_status()
            return str(r.json()["token"])

        return token

    def half_for(user: str):  # type: ignore[no-untyped-def]
        def half() -> bytes:
            r = httpx.post(
                f"{stack.idp}/v1/escrow-half",
                headers={"authorization": "Bearer " + token_for(user)("sealroom-provider")},
            )
            r.raise_for_status()
            return base64.urlsafe_b64decode(r.json()["half"] + "==")

        return half

    def device(user: str, name: str) -> Client:
        return Client(
            stack.ks,
            jwt=token_for(user),
            secret=BasicSplitTrust(half_for(user)),
            keystore=str(home / f"{user}-{name}.json"),
            device_name=name,
        )

    # Two users; dana shares a brief with erin before erin's tablet exists.
    async with device("dana", "laptop") as dana, device("erin", "laptop") as erin:
        await dana.initialize()
        await erin.initialize()
        brief = await dana.encrypt_document("brief-7", b"the agenda", users=["dana", "erin"])

    async with device("erin", "tablet") as tablet, device("erin", "laptop") as erin:
        # Erin approves her new tablet from her laptop; the tablet reads the brief.
        payload = await tablet.request_approval("erin")
        await erin.approve_device(payload)
        await tablet.complete_approval()
        assert await tablet.decrypt_document(brief) == b"the agenda"

        # A meeting between dana's laptop and erin's new tablet; the media keys go to the
        # application's own SFrame code.
        async with device("dana", "laptop") as dana:
            config = MeetingConfig("sync-1", host="dana", invitees=("erin",))
            dana_media, erin_media = OwnSFrame(), OwnSFrame()
            host = MeetingClient(dana, stack.conf, config, key_provider=dana_media)
            guest = MeetingClient(tablet, stack.conf, config, key_provider=erin_media)
            joined, ended = asyncio.Event(), asyncio.Event()
            guest.on(Joined, lambda event: joined.set())
            guest.on(Ended, lambda event: ended.set())
            try:
                await host.start()
                await guest.join()
                await asyncio.wait_for(joined.wait(), 60)
                for _ in range(200):
                    if (
                        dana_media.send is not None
                        and erin_media.send is not None
                        and dana_media.send.kid in erin_media.keys
                        and erin_media.send.kid in dana_media.keys
                    ):
                        break
                    await asyncio.sleep(0.05)
                assert dana_media.send is not None
                assert erin_media.send is not None
                # Both ways, through "the application's own SFU" (here: a variable).
                assert erin_media.unprotect(dana_media.protect(b"dana's video")) == b"dana's video"
                assert dana_media.unprotect(erin_media.protect(b"erin's audio")) == b"erin's audio"

                # The keys are what the guide says: one per roster member per epoch, KID =
                # epoch << 16 | index, the own one marked, the same on both devices.
                epoch = erin_media.send.epoch
                both = [
                    {(k.sender, k.index, k.kid, k.base_key) for k in m.exported if k.epoch == epoch}
                    for m in (dana_media, erin_media)
                ]
                assert both[0] == both[1]
                assert sorted(s for s, _, _, _ in both[0]) == ["dana", "erin"]
                assert sorted(i for _, i, _, _ in both[0]) == [0, 1]
                assert all(kid == epoch << 16 | i for _, i, kid, _ in both[0])
                assert len({key for _, _, _, key in both[0]}) == 2  # no two senders share one
                assert erin_media.send.own
                assert erin_media.send.sender == "erin"
                assert "base_key" not in repr(erin_media.send)

                # Not a private dialect: the project's RFC 9605 code opens the same frame.
                rfc = SFrameContext(OwnSFrame.SUITE)
                rfc.add_decrypt_key(dana_media.send.kid, dana_media.send.base_key)
                assert rfc.decrypt(b"", dana_media.protect(b"checked")) == b"checked"

                await host.end()
                await asyncio.wait_for(ended.wait(), 30)
                assert epoch in dana_media.retired
                assert not dana_media.keys
            finally:
                await host.close()
                await guest.close()


def test_a_program_written_from_the_guide() -> None:
    home = Path(tempfile.mkdtemp())
    stack = Services(home / "services")
    try:
        asyncio.run(_program(stack, home))
    finally:
        stack.stop()


def test_the_program_uses_only_what_the_guide_documents() -> None:
    guide = GUIDE.read_text()
    tree = ast.parse(Path(__file__).read_text())
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sealroom")
        for alias in node.names
    ]
    assert imported
    for module, name in imported:
        assert f"from {module} import" in guide or module == "sealroom.sdk", module
        assert f"`{name}`" in guide or f"import {name}" in guide or f" {name}," in guide, name
