"""Which key the meeting client trusts for a poster: a card is enough for a participant's
post, never for a manager's, which is always checked at the key service (a device revoked
as lost must not post session keys, whatever card it announced with)."""

from __future__ import annotations

import asyncio
from typing import Any

from sealroom.api.encoding import b64e
from sealroom.api.identity import DEVICE_CERT_LABEL, device_certificate_message
from sealroom.crypto.pre import generate_key_pair
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.meeting.messages import BoardMessage
from sealroom.sdk.errors import SdkError
from sealroom.sdk.meeting import MeetingClient


class _RevokedAtTheService:
    """The SDK as far as device look-ups go: the key service names the device revoked."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    async def _call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        self.looked_up.append(path)
        return {"user_id": "hana", "id": "hana-d", "revoke_reason": "revoked"}

    async def _certified(self, info: dict[str, Any]) -> VerifyingKey:
        raise SdkError("the signing device was revoked")


def _client(user_key: SigningKey) -> tuple[MeetingClient, list[str]]:
    mc = MeetingClient.__new__(MeetingClient)  # only the key bookkeeping is exercised
    mc._keys, mc._card_keys, mc._events = {}, {}, asyncio.Queue()
    mc._queue_events, mc._handlers = True, {}
    mc._failed_devices, mc._failed_users = {}, {}
    mc._user_keys = {"hana": user_key.verifying_key}
    mc._loop = asyncio.get_running_loop()
    sdk = _RevokedAtTheService()
    mc.sdk = sdk  # type: ignore[assignment]
    return mc, sdk.looked_up


def test_a_card_never_vouches_for_a_managers_post() -> None:
    user_key, device_key = SigningKey.generate(), SigningKey.generate()
    _, public = generate_key_pair()
    signing = device_key.verifying_key.to_bytes()
    card = {
        "signing_key": b64e(signing),
        "public_key": b64e(public.to_bytes()),
        "certificate": b64e(
            user_key.sign(
                DEVICE_CERT_LABEL, device_certificate_message("hana-d", signing, public.to_bytes())
            )
        ),
    }

    def post(kind: str, body: dict[str, Any]) -> BoardMessage:
        return BoardMessage.create(
            device_key, meeting="m", kind=kind, user="hana", device="hana-d", seq=1, body=body
        )

    async def run() -> None:
        mc, looked_up = _client(user_key)
        key = await mc._poster_key(post("announce", {"card": card}))
        assert key is not None
        assert key.to_bytes() == signing
        assert await mc._poster_key(post("leave", {})) == key  # the card serves its leave
        assert looked_up == []
        assert await mc._poster_key(post("session-key", {})) is None
        assert looked_up == ["/v1/devices/hana-d"]  # checked, and refused as revoked

    asyncio.run(run())
