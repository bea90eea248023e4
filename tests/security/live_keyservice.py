"""A key service on 127.0.0.1 for the attack tests: real uvicorn, real HTTP, on SQLite or a
fresh PostgreSQL schema (dropped afterwards), trusting a development IdP, with SDK clients
and a raw HTTP client for hostile requests."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sealroom.api.reqsig import sign_request
from sealroom.crypto import labels
from sealroom.crypto.pre import EncryptedValue, _origin_message
from sealroom.crypto.signing import SigningKey
from sealroom.idp import PROVIDER_AUDIENCE, DevIdp
from sealroom.keyservice.app import KeyServiceApp, create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from sealroom.keyservice.storage import Database
from sealroom.sdk import BasicSplitTrust, SyncClient
from tests.databases import fresh_database_url
from tests.live_server import live_server_thread

KEYSERVICE_AUDIENCE = "sealroom-keyservice"


@dataclass
class LiveKeyService:
    url: str
    parts: KeyServiceApp
    idp: DevIdp
    tmp: Path
    http: httpx.Client

    def client(self, user: str, device: str = "laptop") -> SyncClient:
        """An SDK client of ``user`` on its own keystore, over HTTP."""
        idp = self.idp
        return SyncClient(
            self.url,
            jwt=lambda audience: idp.issue(user, audience),
            secret=BasicSplitTrust(lambda: idp.escrow_half(idp.issue(user, PROVIDER_AUDIENCE))),
            keystore=self.tmp / "keystores" / user / f"{device}.json",
            device_name=device,
        )

    def token(self, user: str) -> str:
        return self.idp.issue(user, KEYSERVICE_AUDIENCE)

    def signed(
        self,
        signer: SigningKey,
        device_id: str,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        now: float | None = None,
        nonce: bytes | None = None,
    ) -> httpx.Response:
        """A device-signed request, made by hand: any key may sign, any device be named."""
        headers = sign_request(
            signer,
            device_id,
            method=method,
            path=path,
            query="",
            body=body,
            now=time.time() if now is None else now,
            nonce=nonce,
        )
        if body:
            headers["content-type"] = "application/json"
        return self.http.request(method, path, content=body, headers=headers)

    def audit(self) -> list[dict[str, Any]]:
        with self.parts.db.transaction() as tx:
            return tx.all("SELECT * FROM audit ORDER BY seq")


def device_keys(client: SyncClient) -> tuple[SigningKey, str]:
    """A registered client's signing key and device id."""
    ks = client.client.ks
    assert ks.signing_key is not None
    assert ks.device_id is not None
    return ks.signing_key, ks.device_id


def resigned_as_own(edek: bytes, client: SyncClient) -> bytes:
    """The same EDEK (R, C) with ``client``'s device as its origin: the origin signature
    covers only R and the auth hash, so anyone holding an EDEK can sign it as its own."""
    value = EncryptedValue.from_bytes(edek)
    signer = device_keys(client)[0]
    message = _origin_message(value.ephemeral_public_key, value.auth_hash)
    return dataclasses.replace(
        value,
        origin_signer=signer.verifying_key.to_bytes(),
        origin_signature=signer.sign(labels.SIG_ORIGIN, message),
    ).to_bytes()


#: The tables that hold the service's state (the audit log and request nonces aside).
STATE_TABLES = (
    "users",
    "escrow_halves",
    "devices",
    "sr_groups",
    "group_admins",
    "group_members",
    "group_preapproved",
    "group_values",
    "documents",
    "document_grants",
)


def state(db: Database) -> dict[str, list[str]]:
    """Every row of every state table (``last_used_at`` aside), to show that a refused
    request changed nothing."""
    out = {}
    with db.transaction() as tx:
        for table in STATE_TABLES:
            rows = tx.all(f"SELECT * FROM {table}")  # our own table names
            out[table] = sorted(
                repr(sorted((k, v) for k, v in row.items() if k != "last_used_at")) for row in rows
            )
    return out


def drop_audit_guard(db: Database) -> None:
    """What a database insider does first: remove the append-only triggers."""
    with db.transaction() as tx:
        if tx.dialect == "sqlite":
            tx.execute("DROP TRIGGER audit_no_update")
            tx.execute("DROP TRIGGER audit_no_delete")
        else:
            tx.execute("DROP TRIGGER audit_no_change ON audit")


@contextlib.contextmanager
def live_keyservice(
    tmp: Path,
    backend: str = "sqlite",
    *,
    clock: Callable[[], float] | None = None,
    **settings: Any,
) -> Iterator[LiveKeyService]:
    """A key service on a free port of 127.0.0.1 until the block ends."""
    idp = DevIdp(tmp / "idp")
    with fresh_database_url(backend, tmp) as url:
        config = Settings(
            database_url=url,
            secrets_file=tmp / "keyservice-secrets.json",
            jwt_issuer=idp.issuer,
            jwks_file=tmp / "unused",
            **settings,
        )
        app = create_app(config, clock=clock, jwks=JwksSource(document=idp.jwks))
        parts: KeyServiceApp = app.state.parts
        try:
            with live_server_thread(app) as port:
                base = f"http://127.0.0.1:{port}"
                with httpx.Client(base_url=base, timeout=30.0) as http:
                    yield LiveKeyService(base, parts, idp, tmp, http)
        finally:
            parts.db.close()
