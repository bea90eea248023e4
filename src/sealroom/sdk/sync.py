"""The synchronous client: every call of :class:`~sealroom.sdk.client.Client`, run to
completion on a private event loop (for scripts, notebooks and non-async applications).

Its methods are written out, one per ``Client`` coroutine, with the same arguments and
results; a test checks that none is missing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, BinaryIO, TypeVar

import httpx

from sealroom.crypto.envelope import Envelope
from sealroom.crypto.escrow import Argon2idParams, Pbkdf2Params
from sealroom.crypto.pre import PublicKey
from sealroom.crypto.signing import VerifyingKey
from sealroom.sdk.authorship import OpenedDocument, OpenedStream
from sealroom.sdk.client import Client, JwtProvider, SecretSource
from sealroom.sdk.keystore import PinnedUser
from sealroom.sdk.resources import AuditReport, Device, Grant, GroupInfo, Target

__all__ = ["SyncClient"]

_T = TypeVar("_T")


class SyncClient:
    """A :class:`Client` for synchronous code: the same arguments, the same calls, each
    blocking until done. Use it as a context manager, or call :meth:`close`. Not for use
    inside a running event loop (use ``Client`` there)."""

    def __init__(
        self,
        base_url: str,
        *,
        jwt: JwtProvider,
        secret: SecretSource,
        keystore: str | os.PathLike[str],
        device_name: str = "device",
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        on_key_change: Callable[[str, bytes, bytes], bool] | None = None,
        escrow_params: Argon2idParams | Pbkdf2Params | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._client = Client(
                base_url,
                jwt=jwt,
                secret=secret,
                keystore=keystore,
                device_name=device_name,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                transport=transport,
                clock=clock,
                on_key_change=on_key_change,
                escrow_params=escrow_params,
            )
        except BaseException:
            self._loop.close()
            raise

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    @property
    def client(self) -> Client:
        """The async client underneath."""
        return self._client

    @property
    def token_provider(self) -> JwtProvider:
        return self._client.token_provider

    @property
    def user_id(self) -> str:
        return self._client.user_id

    @property
    def device_id(self) -> str:
        return self._client.device_id

    @property
    def service_key(self) -> VerifyingKey:
        return self._client.service_key

    def accept_key(self, user_id: str) -> None:
        """Runs :meth:`Client.accept_key`."""
        self._client.accept_key(user_id)

    def expect_group_admins(self, group_id: str, user_ids: Sequence[str]) -> None:
        """Runs :meth:`Client.expect_group_admins`."""
        self._client.expect_group_admins(group_id, user_ids)

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self._loop.run_until_complete(coro)

    def _call(
        self, method: str, path: str, body: Any = None, *, auth: str = "device", query: str = ""
    ) -> dict[str, Any]:
        """A raw request, signed as the SDK signs (tests send with it what the SDK would
        not)."""
        return self._run(self._client._call(method, path, body, auth=auth, query=query))

    def service_escrow_half(self) -> bytes:
        """Runs :meth:`Client.service_escrow_half`."""
        return self._run(self._client.service_escrow_half())

    def initialize(self) -> None:
        """Runs :meth:`Client.initialize`."""
        return self._run(self._client.initialize())

    def request_approval(self, user_id: str) -> str:
        """Runs :meth:`Client.request_approval`."""
        return self._run(self._client.request_approval(user_id))

    def approve_device(self, payload: str) -> str:
        """Runs :meth:`Client.approve_device`."""
        return self._run(self._client.approve_device(payload))

    def complete_approval(self) -> None:
        """Runs :meth:`Client.complete_approval`."""
        return self._run(self._client.complete_approval())

    def user_public_keys(self, user_ids: Sequence[str]) -> dict[str, PublicKey]:
        """Runs :meth:`Client.user_public_keys`."""
        return self._run(self._client.user_public_keys(user_ids))

    def find_user_keys(self, user_ids: Sequence[str]) -> dict[str, PinnedUser]:
        """Runs :meth:`Client.find_user_keys`."""
        return self._run(self._client.find_user_keys(user_ids))

    def list_devices(self) -> list[Device]:
        """Runs :meth:`Client.list_devices`."""
        return self._run(self._client.list_devices())

    def revoke_device(self, device_id: str) -> None:
        """Runs :meth:`Client.revoke_device`."""
        return self._run(self._client.revoke_device(device_id))

    def revoke_device_with_escrow(self, device_id: str) -> None:
        """Runs :meth:`Client.revoke_device_with_escrow`."""
        return self._run(self._client.revoke_device_with_escrow(device_id))

    def rotate_device(self) -> str:
        """Runs :meth:`Client.rotate_device`."""
        return self._run(self._client.rotate_device())

    def device_card(self) -> dict[str, str]:
        """Runs :meth:`Client.device_card`."""
        return self._run(self._client.device_card())

    def create_group(
        self, group_id: str, *, join: bool = True, forward_only: bool = False
    ) -> PublicKey:
        """Runs :meth:`Client.create_group`."""
        return self._run(self._client.create_group(group_id, join=join, forward_only=forward_only))

    def register_group_value(self, group_id: str, edek: bytes, *, members: Iterable[str]) -> None:
        """Runs :meth:`Client.register_group_value`."""
        return self._run(self._client.register_group_value(group_id, edek, members=members))

    def claim_group_management(self, group_id: str) -> str | None:
        """Runs :meth:`Client.claim_group_management`."""
        return self._run(self._client.claim_group_management(group_id))

    def ban_member(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.ban_member`."""
        return self._run(self._client.ban_member(group_id, user_id))

    def lift_ban(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.lift_ban`."""
        return self._run(self._client.lift_ban(group_id, user_id))

    def group(self, group_id: str) -> GroupInfo:
        """Runs :meth:`Client.group`."""
        return self._run(self._client.group(group_id))

    def group_public_key(self, group_id: str) -> PublicKey:
        """Runs :meth:`Client.group_public_key`."""
        return self._run(self._client.group_public_key(group_id))

    def list_groups(self) -> list[str]:
        """Runs :meth:`Client.list_groups`."""
        return self._run(self._client.list_groups())

    def add_members(self, group_id: str, user_ids: Sequence[str]) -> dict[str, str | None]:
        """Runs :meth:`Client.add_members`."""
        return self._run(self._client.add_members(group_id, user_ids))

    def add_member(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.add_member`."""
        return self._run(self._client.add_member(group_id, user_id))

    def remove_member(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.remove_member`."""
        return self._run(self._client.remove_member(group_id, user_id))

    def add_admin(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.add_admin`."""
        return self._run(self._client.add_admin(group_id, user_id))

    def remove_admin(self, group_id: str, user_id: str) -> None:
        """Runs :meth:`Client.remove_admin`."""
        return self._run(self._client.remove_admin(group_id, user_id))

    def preapprove(self, group_id: str, user_ids: Sequence[str]) -> None:
        """Runs :meth:`Client.preapprove`."""
        return self._run(self._client.preapprove(group_id, user_ids))

    def delete_group(self, group_id: str) -> None:
        """Runs :meth:`Client.delete_group`."""
        return self._run(self._client.delete_group(group_id))

    def encrypt_document(
        self,
        doc_id: str,
        data: bytes,
        *,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        managed: bool = True,
    ) -> Envelope:
        """Runs :meth:`Client.encrypt_document`."""
        return self._run(
            self._client.encrypt_document(doc_id, data, users=users, groups=groups, managed=managed)
        )

    def encrypt_stream(
        self,
        doc_id: str,
        src: BinaryIO,
        dst: BinaryIO,
        *,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        chunk_size: int = 65536,
    ) -> None:
        """Runs :meth:`Client.encrypt_stream`."""
        return self._run(
            self._client.encrypt_stream(
                doc_id, src, dst, users=users, groups=groups, chunk_size=chunk_size
            )
        )

    def decrypt_stream(
        self, src: BinaryIO, dst: BinaryIO, *, any_sealer: bool = False
    ) -> OpenedStream:
        """Runs :meth:`Client.decrypt_stream`."""
        return self._run(self._client.decrypt_stream(src, dst, any_sealer=any_sealer))

    def open_document(self, envelope: Envelope, *, any_sealer: bool = False) -> OpenedDocument:
        """Runs :meth:`Client.open_document`."""
        return self._run(self._client.open_document(envelope, any_sealer=any_sealer))

    def decrypt_document(self, envelope: Envelope) -> bytes:
        """Runs :meth:`Client.decrypt_document`."""
        return self._run(self._client.decrypt_document(envelope))

    def open_unmanaged(
        self, envelope: Envelope, index: int, target: Target, *, any_sealer: bool = False
    ) -> OpenedDocument:
        """Runs :meth:`Client.open_unmanaged`."""
        return self._run(
            self._client.open_unmanaged(envelope, index, target, any_sealer=any_sealer)
        )

    def decrypt_unmanaged(self, envelope: Envelope, index: int, target: Target) -> bytes:
        """Runs :meth:`Client.decrypt_unmanaged`."""
        return self._run(self._client.decrypt_unmanaged(envelope, index, target))

    def grant(self, document: str | Envelope, to: Target) -> None:
        """Runs :meth:`Client.grant`."""
        return self._run(self._client.grant(document, to))

    def revoke(self, document: str | Envelope, target: Target) -> None:
        """Runs :meth:`Client.revoke`."""
        return self._run(self._client.revoke(document, target))

    def list_grants(self, document: str | Envelope) -> list[Grant]:
        """Runs :meth:`Client.list_grants`."""
        return self._run(self._client.list_grants(document))

    def delete_document(self, document: str | Envelope) -> None:
        """Runs :meth:`Client.delete_document`."""
        return self._run(self._client.delete_document(document))

    def verify_audit(self, *, expect_head: str | None = None) -> AuditReport:
        """Runs :meth:`Client.verify_audit`."""
        return self._run(self._client.verify_audit(expect_head=expect_head))
