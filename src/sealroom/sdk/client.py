"""The async client SDK: everything a device does against the key service.

It does all encrypting and decrypting itself; the service only transforms. Device keys
live in a 0600 keystore file and never leave it. Users' keys and the service's signing key
are pinned on first sight; a change raises :class:`KeyChangedError` (after a
:class:`KeyChangedWarning`) unless the application's ``on_key_change`` accepts it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import re
import secrets
import shutil
import ssl
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TypeVar
from urllib.parse import quote, unquote, urlencode

import httpx

from sealroom.api.encoding import b64d, b64e
from sealroom.api.identity import (
    DEVICE_CERT_LABEL,
    GROUP_KEY_LABEL,
    REVOKE_PROOF_LABEL,
    device_certificate_message,
    group_key_message,
    members_digest,
    user_signing_key,
)
from sealroom.api.reqsig import sign_request
from sealroom.crypto.envelope import Envelope, open_envelope, open_with_key, seal
from sealroom.crypto.escrow import (
    Argon2idParams,
    EscrowSecret,
    Pbkdf2Params,
    combine_split_secret,
    open_private_key,
    seal_private_key,
)
from sealroom.crypto.pre import (
    EncryptedValue,
    Plaintext,
    PrivateKey,
    PublicKey,
    augment_public_key,
    decrypt,
    derive_private_key,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
)
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.crypto.stream import DEFAULT_CHUNK, open_stream, read_header, seal_stream
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError
from sealroom.sdk.authorship import OpenedDocument, OpenedStream, Sealer
from sealroom.sdk.errors import (
    AuthorshipError,
    KeyChangedError,
    KeyChangedWarning,
    NetworkError,
    SdkError,
    ServiceRefusedError,
)
from sealroom.sdk.keystore import Keystore, PinnedUser
from sealroom.sdk.resources import AuditReport, Device, Grant, GroupInfo, Target

__all__ = [
    "APPROVAL_PREFIX",
    "KEEPALIVE_SECONDS",
    "KEYSERVICE_AUDIENCE",
    "SHED_WAIT_SECONDS",
    "SIGNER_CACHE_SECONDS",
    "BasicSplitTrust",
    "Client",
    "JwtProvider",
    "Password",
    "SecretSource",
    "keystore_path",
]

KEYSERVICE_AUDIENCE = "sealroom-keyservice"
SIGNER_CACHE_SECONDS = 60.0
_DOC_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
APPROVAL_PREFIX = "sealroom-approve:v1:"
JwtProvider = Callable[[str], "Awaitable[str] | str"]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class SecretSource(Protocol):
    """Where the escrow secret comes from: the basic split-trust mode or a password."""

    async def secret(self, client: Client) -> EscrowSecret: ...


class BasicSplitTrust:
    """Basic mode: one half from the key service, one from the conferencing provider."""

    def __init__(self, provider_half: Callable[[], Awaitable[bytes] | bytes]) -> None:
        self._provider_half = provider_half

    async def secret(self, client: Client) -> EscrowSecret:
        service = await client.service_escrow_half()
        provider = await _maybe_await(self._provider_half())
        return combine_split_secret(service, provider)


class Password:
    """Advanced mode: a password the user chooses."""

    def __init__(self, password: Callable[[], Awaitable[str] | str]) -> None:
        self._password = password

    async def secret(self, client: Client) -> EscrowSecret:
        return EscrowSecret.from_password(await _maybe_await(self._password()))


_T = TypeVar("_T")


#: How long the SDK keeps an idle connection to the key service (below servers' timeouts).
KEEPALIVE_SECONDS = 4.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: loading the CA bundle takes ~30 ms, which
    every client would otherwise pay (a server running many participants makes many)."""
    return httpx.create_ssl_context()


def _initialized(value: _T | None) -> _T:
    """``value``, or SdkError if the keystore has not been set up yet."""
    if value is None:
        raise SdkError("not initialized")
    return value


def keystore_path(path: str | os.PathLike[str]) -> Path:
    """A keystore path from the application: ``str`` or ``Path``, with ``~`` expanded."""
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise TypeError(f"keystore must be a str or a Path, not {type(path).__name__}")
    return Path(path).expanduser()


def _segment(value: str) -> str:
    """One URL path segment, quoted (a ``/`` or ``?`` in an id cannot change the path)."""
    if not isinstance(value, str):
        raise TypeError(f"an id must be a str, not {type(value).__name__}")
    return quote(value, safe="")


def _envelope(value: object) -> Envelope:
    if not isinstance(value, Envelope):
        hint = " (parse bytes with Envelope.from_bytes)" if isinstance(value, bytes) else ""
        raise TypeError(f"expected an Envelope, not {type(value).__name__}{hint}")
    return value


#: Methods that may be sent again when the first attempt's fate is unknown.
_IDEMPOTENT: Final[frozenset[str]] = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: Answers after which an idempotent call is tried again (a proxy or the service failing).
_RETRY_STATUS: Final[frozenset[int]] = frozenset({502, 503, 504})


def _ids(value: object, what: str) -> list[str]:
    """A list of user or group ids from the application; a lone ``str`` (which would be
    read as its characters) or anything but ids is a TypeError."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a list of ids, not {type(value).__name__}")
    ids = list(value)
    for item in ids:
        if not isinstance(item, str):
            raise TypeError(f"{what}: an id is a str, not {type(item).__name__}")
    return ids


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _target(value: object) -> Target:
    if not isinstance(value, Target):
        raise TypeError(
            f"expected a Target (Target.user(id) or Target.group(id)), not {type(value).__name__}"
        )
    return value


def _document_id(document: object) -> str:
    """A managed document's id, from its id or its envelope."""
    if isinstance(document, Envelope):
        return _doc_id(document.object_id)
    if isinstance(document, str):
        return _doc_id(document.encode())
    raise TypeError(f"expected a document id (str) or an Envelope, not {type(document).__name__}")


def _doc_id(raw: bytes) -> str:
    """A document id from outside, checked before it goes into a URL."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise SdkError("the object id is not a valid document id") from None
    if not _DOC_ID.fullmatch(text):
        raise SdkError("the object id is not a valid document id")
    return text


class Client:
    """One device of one user. Use ``async with Client(...) as c: await c.initialize()``.

    ``base_url``: the key service. ``jwt``: called with an audience (``sealroom-keyservice``,
    and ``sealroom-conference`` for meetings), returns the user's token from the
    application's identity provider. ``secret``: :class:`BasicSplitTrust` or
    :class:`Password`. ``keystore``: the device's key file (``str`` or ``Path``, ``~``
    expanded; created mode 0600). ``timeout``: seconds per request (or an
    ``httpx.Timeout``). ``retries``: how many more times an idempotent call (GET, PUT,
    DELETE) is tried after a network failure or a 502/503/504, backing off from
    ``backoff`` seconds, doubling (a call the service may have done already, such as a
    DELETE, may then answer ``not_found``); a 429 or 503 with ``Retry-After`` is waited
    out for any call, up to 10 seconds. A failure that remains raises
    :class:`~sealroom.sdk.errors.NetworkError`.
    """

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
        """``escrow_params``: the slow KDF that protects the escrowed user key (default
        Argon2id, RFC 9106's second recommended option); lower costs are refused below the
        escrow module's floor."""
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
        if not callable(jwt):
            raise TypeError("jwt must be a callable: audience -> token")
        if not hasattr(secret, "secret"):
            raise TypeError("secret must be a BasicSplitTrust or a Password")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise TypeError("retries must be an int >= 0")
        self._jwt, self._secret, self._clock = jwt, secret, clock
        self._retries, self._backoff = retries, backoff
        self._escrow_params = escrow_params
        self._on_key_change = on_key_change
        self.ks = Keystore.load(keystore_path(keystore))
        self.ks.device_name = self.ks.device_name or device_name
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            verify=_tls_context(),
            # Drop an idle connection before the server would (uvicorn: 5 s), so that a
            # request never goes out on a connection the server is closing (a ReadError).
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )
        self._signers: dict[bytes, tuple[float, VerifyingKey, Sealer]] = {}
        self._seeds: dict[str, Plaintext] = {}  # group id -> its seed, for its admins
        self._users_fetched: dict[str, float] = {}  # user -> when its keys were last checked
        self._card: dict[str, str] | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def token_provider(self) -> JwtProvider:
        """The ``jwt`` provider this client was made with (a meeting asks it for its
        conferencing token unless told otherwise)."""
        return self._jwt

    # --- plumbing ---

    async def _call(
        self, method: str, path: str, body: Any = None, *, auth: str = "device", query: str = ""
    ) -> dict[str, Any]:
        """``path`` has its segments quoted already (:func:`_segment`); the signature covers
        the decoded path, which is what the service sees."""
        raw = json.dumps(body).encode() if body is not None else b""
        url = path + ("?" + query if query else "")
        signed_path = unquote(path)
        waited, attempt = 0.0, 0
        while True:
            headers = await self._headers(method, signed_path, query, raw, auth)
            try:
                response = await self._http.request(method, url, content=raw, headers=headers)
            except httpx.TransportError as exc:
                # Never reached the service (any call may go again), or its fate is unknown
                # (only an idempotent one may).
                again = method in _IDEMPOTENT or isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout
                )
                if not again or attempt >= self._retries:
                    raise NetworkError(
                        f"{method} {path}: the key service did not answer ({type(exc).__name__})"
                    ) from exc
                attempt += 1
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1) * _JITTER.uniform(0.5, 1.5))
                continue
            wait = _shed_wait(response)
            if wait is None:
                if (
                    response.status_code in _RETRY_STATUS
                    and method in _IDEMPOTENT
                    and attempt < self._retries
                ):
                    attempt += 1
                    await asyncio.sleep(
                        self._backoff * 2 ** (attempt - 1) * _JITTER.uniform(0.5, 1.5)
                    )
                    continue
                break
            if waited + wait > SHED_WAIT_SECONDS:
                break
            # Rate limited (429) or shedding load (503): come back when the service says,
            # with a fresh signature, for a few seconds at most: never sooner than asked,
            # and spread up to half as long again, so that the many members a rekey refused
            # at once do not all come back in the same instant (and leave the queue idle).
            pause = wait * _JITTER.uniform(1.0, 1.5)
            waited += pause
            await asyncio.sleep(pause)
        try:
            data: dict[str, Any] = response.json() if response.content else {}
        except ValueError:
            data = {}
        if response.status_code >= 400:
            raise ServiceRefusedError(
                str(data.get("code", "unknown")), response.status_code, str(data.get("detail", ""))
            )
        return data

    async def _headers(
        self, method: str, path: str, query: str, raw: bytes, auth: str
    ) -> dict[str, str]:
        headers = {"content-type": "application/json"} if raw else {}
        if auth == "jwt":
            headers["authorization"] = "Bearer " + str(
                await _maybe_await(self._jwt(KEYSERVICE_AUDIENCE))
            )
        elif auth == "device":
            if self.ks.signing_key is None or self.ks.device_id is None:
                raise SdkError("this device is not registered yet; call initialize()")
            headers |= sign_request(
                self.ks.signing_key,
                self.ks.device_id,
                method=method,
                path=path,
                query=query,
                body=raw,
                now=self._clock(),
            )
        return headers

    def _pin(self, subject: str, old: bytes | None, new: bytes) -> bool:
        """True if ``new`` may be used: first sight, unchanged, or accepted by the app."""
        if old is None or old == new:
            return True
        warnings.warn(f"pinned key of {subject} changed", KeyChangedWarning, stacklevel=3)
        if self._on_key_change is not None and self._on_key_change(subject, old, new):
            return True
        raise KeyChangedError(subject)

    @property
    def user_id(self) -> str:
        return _initialized(self.ks.user_id)

    @property
    def device_id(self) -> str:
        return _initialized(self.ks.device_id)

    def _device_key(self) -> PrivateKey:
        return _initialized(self.ks.device_key)

    def _signer(self) -> SigningKey:
        return _initialized(self.ks.signing_key)

    @property
    def service_key(self) -> VerifyingKey:
        return VerifyingKey.from_bytes(_initialized(self.ks.service_key))

    # --- setup ---

    async def service_escrow_half(self) -> bytes:
        data = await self._call("POST", "/v1/users/me/escrow-half", auth="jwt")
        return b64d(data["half"], "half")

    async def _user_key(self, escrow_blob: bytes | None = None) -> PrivateKey:
        if escrow_blob is None:
            escrow_blob = b64d((await self._call("GET", "/v1/users/me"))["escrow_blob"], "blob")
        return open_private_key(escrow_blob, await self._secret.secret(self))

    async def initialize(self) -> None:
        """Pin the service key; on first use create the user and register this device."""
        info = await self._call("GET", "/v1/service", auth="none")
        service_key = b64d(info["signing_key"], "signing_key")
        self._pin("the key service", self.ks.service_key, service_key)
        self.ks.service_key = service_key
        if self.ks.registered:
            self.ks.save()
            return
        try:
            me = await self._call("GET", "/v1/users/me", auth="jwt")
        except ServiceRefusedError as exc:
            if exc.code != "not_found":
                raise
            me = None
        if me is None:
            user_key, raw_public = generate_key_pair()
            signer = user_signing_key(user_key)
            params = self._escrow_params
            blob = seal_private_key(
                user_key,
                await self._secret.secret(self),
                "pbkdf2" if isinstance(params, Pbkdf2Params) else "argon2id",
                params=params,
            )
            created = await self._call(
                "POST",
                "/v1/users",
                {
                    "public_key": b64e(raw_public.to_bytes()),
                    "signing_key": b64e(signer.verifying_key.to_bytes()),
                    "escrow_blob": b64e(blob),
                },
                auth="jwt",
            )
            user_id, public = created["id"], b64d(created["public_key"], "public_key")
            service_part = PublicKey.from_bytes(b64d(created["service_part"], "service_part"))
            if PublicKey.from_bytes(public) != augment_public_key(raw_public, service_part):
                raise SdkError("the service returned an inconsistent user key")
        else:
            user_key = await self._user_key(b64d(me["escrow_blob"], "escrow_blob"))
            signer = user_signing_key(user_key)
            if signer.verifying_key.to_bytes() != b64d(me["signing_key"], "signing_key"):
                raise SdkError("the escrowed key does not match the user's signing key")
            user_id, public = me["id"], b64d(me["public_key"], "public_key")
        self.ks.user_id = user_id
        self._remember(user_id, public, signer.verifying_key.to_bytes())
        body = self._new_device(user_key)
        await self._call("POST", "/v1/devices", body, auth="jwt")
        self.ks.registered = True
        self.ks.save()

    def _remember(self, user_id: str, public_key: bytes, signing_key: bytes) -> None:
        old = self.ks.pinned.get(user_id)
        ok = self._pin(f"user {user_id}", old.public_key if old else None, public_key)
        ok = ok and self._pin(f"user {user_id}", old.signing_key if old else None, signing_key)
        if ok:
            self.ks.pinned[user_id] = PinnedUser(public_key, signing_key)

    def _new_device(self, user_key: PrivateKey) -> dict[str, Any]:
        """Fresh keys for this device, certified and delegated to by the user key."""
        device_key, device_public = generate_key_pair()
        device_signer = SigningKey.generate()
        self.ks.device_id, self.ks.device_key = f"dev-{uuid.uuid4().hex}", device_key
        self.ks.signing_key = device_signer
        self.ks.save()
        return self._registration(
            user_key,
            self.ks.device_id,
            self.ks.device_name,
            device_signer.verifying_key.to_bytes(),
            device_public,
        )

    @staticmethod
    def _registration(
        user_key: PrivateKey, device_id: str, name: str, signing_key: bytes, public: PublicKey
    ) -> dict[str, Any]:
        user_signer = user_signing_key(user_key)
        cert = user_signer.sign(
            DEVICE_CERT_LABEL, device_certificate_message(device_id, signing_key, public.to_bytes())
        )
        tk = generate_transform_key(user_key, public, user_signer)
        return {
            "device_id": device_id,
            "name": name,
            "signing_key": b64e(signing_key),
            "public_key": b64e(public.to_bytes()),
            "certificate": b64e(cert),
            "transform_key": b64e(tk.key.to_bytes()),
        }

    # --- advanced device approval ---

    async def request_approval(self, user_id: str) -> str:
        """On a new device: make keys and return a payload to show (e.g. as a QR code)."""
        device_key, device_public = generate_key_pair()
        signer = SigningKey.generate()
        self.ks.user_id, self.ks.device_key, self.ks.signing_key = user_id, device_key, signer
        self.ks.device_id = f"dev-{uuid.uuid4().hex}"
        self.ks.save()
        payload = {
            "user_id": user_id,
            "device_id": self.ks.device_id,
            "name": self.ks.device_name,
            "signing_key": b64e(signer.verifying_key.to_bytes()),
            "public_key": b64e(device_public.to_bytes()),
        }
        return APPROVAL_PREFIX + b64e(json.dumps(payload, sort_keys=True).encode())

    async def approve_device(self, payload: str) -> str:
        """On an existing device: approve a new one by making its user→device key."""
        if not payload.startswith(APPROVAL_PREFIX):
            raise SdkError("not a Sealroom approval payload")
        data = json.loads(b64d(payload[len(APPROVAL_PREFIX) :], "payload", max_bytes=4096))
        if data.get("user_id") != self.user_id:
            raise SdkError("that device belongs to another user")
        public = PublicKey.from_bytes(b64d(data["public_key"], "public_key"))
        signing_key = VerifyingKey.from_bytes(b64d(data["signing_key"], "signing_key"))
        user_key = await self._user_key()
        body = self._registration(
            user_key, str(data["device_id"]), str(data["name"]), signing_key.to_bytes(), public
        )
        await self._call("POST", "/v1/devices", body)
        return str(data["device_id"])

    async def complete_approval(self) -> None:
        """On the new device, once approved: pin the service and user keys."""
        self.ks.registered = True
        info = await self._call("GET", "/v1/service", auth="none")
        service_key = b64d(info["signing_key"], "signing_key")
        self._pin("the key service", self.ks.service_key, service_key)
        self.ks.service_key = service_key
        await self.user_public_keys([self.user_id])
        self.ks.save()

    # --- users and devices ---

    async def user_public_keys(self, user_ids: Sequence[str]) -> dict[str, PublicKey]:
        """Users' public keys, pinned on first sight and checked against the pins after."""
        out = await self.find_user_keys(user_ids)
        missing = set(user_ids) - set(out)
        if missing:
            raise SdkError(f"no such user: {sorted(missing)[0]}")
        return {uid: PublicKey.from_bytes(p.public_key) for uid, p in out.items()}

    async def find_user_keys(self, user_ids: Sequence[str]) -> dict[str, PinnedUser]:
        """The keys of those of ``user_ids`` that exist, fetched 1,000 per request, pinned
        on first sight and checked against the pins after; the keystore is written once."""
        wanted = sorted(set(_ids(user_ids, "user_ids")))
        out: dict[str, PinnedUser] = {}
        before = dict(self.ks.pinned)
        for i in range(0, len(wanted), 1000):
            body = {"user_ids": wanted[i : i + 1000]}
            data = await self._call("POST", "/v1/users/keys", body)
            for uid, keys in data["keys"].items():
                public = b64d(keys["public_key"], "key")
                signing = b64d(keys["signing_key"], "key")
                self._remember(uid, public, signing)
                out[uid] = PinnedUser(public, signing)
                self._users_fetched[uid] = self._clock()
        if self.ks.pinned != before:
            self.ks.save()
        return out

    def accept_key(self, user_id: str) -> None:
        """Forget a user's pin, so the next fetch pins the key the service has now."""
        self.ks.pinned.pop(user_id, None)
        self.ks.save()

    async def list_devices(self) -> list[Device]:
        """This user's devices, revoked ones included."""
        return [Device.from_json(d) for d in (await self._call("GET", "/v1/devices"))["devices"]]

    async def revoke_device(self, device_id: str) -> None:
        await self._call("POST", f"/v1/devices/{_segment(device_id)}/revoke", {})

    async def revoke_device_with_escrow(self, device_id: str) -> None:
        """When no device is left: a JWT plus a proof made with the escrowed user key."""
        proof = user_signing_key(await self._user_key_from_jwt()).sign(
            REVOKE_PROOF_LABEL, device_id.encode()
        )
        await self._call(
            "POST", f"/v1/devices/{_segment(device_id)}/revoke", {"proof": b64e(proof)}, auth="jwt"
        )

    async def _user_key_from_jwt(self) -> PrivateKey:
        me = await self._call("GET", "/v1/users/me", auth="jwt")
        return await self._user_key(b64d(me["escrow_blob"], "escrow_blob"))

    async def rotate_device(self) -> str:
        """New device keys in, old ones out, atomically (after every meeting)."""
        user_key = await self._user_key()
        device_key, public = generate_key_pair()
        signer = SigningKey.generate()
        new_id = f"dev-{uuid.uuid4().hex}"
        body = self._registration(
            user_key, new_id, self.ks.device_name, signer.verifying_key.to_bytes(), public
        )
        await self._call("POST", f"/v1/devices/{_segment(self.device_id)}/rotate", body)
        self.ks.device_id, self.ks.device_key, self.ks.signing_key = new_id, device_key, signer
        self.ks.save()
        return new_id

    # --- checking who signed ---

    async def device_card(self) -> dict[str, str]:
        """This device's signing key, PRE key and certificate as the key service lists
        them (base64url), for others to check it against its user's key."""
        if self._card is None or self._card.get("id") != self.device_id:
            info = await self._call("GET", f"/v1/devices/{_segment(self.device_id)}")
            self._card = {
                k: str(info[k]) for k in ("id", "signing_key", "public_key", "certificate")
            }
        return {k: v for k, v in self._card.items() if k != "id"}

    async def _origin(self, signer: bytes) -> VerifyingKey:
        """A device signing key, trusted only if its certificate chains to a pinned user and
        the device was not revoked as lost (rotated devices keep their history)."""
        return (await self._signed_by(signer))[0]

    async def _signed_by(self, signer: bytes) -> tuple[VerifyingKey, Sealer]:
        """As :meth:`_origin`, with the device and the user whose certificate vouches for it."""
        cached = self._signers.get(signer)
        if cached is not None and self._clock() - cached[0] < SIGNER_CACHE_SECONDS:
            return cached[1], cached[2]
        info = await self._call("GET", f"/v1/devices/by-signing-key/{_segment(b64e(signer))}")
        key = await self._certified(info)
        if key.to_bytes() != signer:
            raise SdkError("the service answered for another device")
        who = Sealer(str(info["user_id"]), str(info["id"]))
        self._signers[signer] = (self._clock(), key, who)
        return key, who

    async def _certified(self, info: dict[str, Any]) -> VerifyingKey:
        """Check a device's certificate against its user's pinned key; its signing key.
        The user's keys are fetched (and checked against the pin) at most once a minute;
        the device is then known by its signing key too (see :meth:`_signed_by`)."""
        if info.get("revoke_reason") == "revoked":
            raise SdkError("the signing device was revoked")
        user = str(info["user_id"])
        fetched = self._users_fetched.get(user)
        if fetched is None or self._clock() - fetched >= SIGNER_CACHE_SECONDS:
            await self.user_public_keys([user])
        user_key = VerifyingKey.from_bytes(self.ks.pinned[user].signing_key)
        signer = b64d(info["signing_key"], "signing_key")
        message = device_certificate_message(
            info["id"], signer, b64d(info["public_key"], "public_key")
        )
        try:
            user_key.verify(DEVICE_CERT_LABEL, message, b64d(info["certificate"], "cert"))
        except SignatureError:
            raise SdkError("the device certificate does not verify") from None
        key = VerifyingKey.from_bytes(signer)
        self._signers[signer] = (self._clock(), key, Sealer(user, str(info["id"])))
        return key

    async def _unwrap(self, edek: bytes) -> Plaintext:
        return (await self._unwrap_made_by(edek))[0]

    async def _unwrap_made_by(self, edek: bytes) -> tuple[Plaintext, Sealer]:
        """Decrypt a transformed EDEK; also the device (and its user) that made it."""
        value = EncryptedValue.from_bytes(edek)
        origin, maker = await self._signed_by(value.origin_signer)
        source = decrypt(
            value, self._device_key(), origin_signer=origin, transformer=self.service_key
        )
        return source, maker

    # --- groups ---

    async def create_group(
        self, group_id: str, *, join: bool = True, forward_only: bool = False
    ) -> PublicKey:
        """Create a group with this user as admin (and, with ``join``, as member). In a
        ``forward_only`` group (a meeting) members open only values that an admin
        registered (:meth:`register_group_value`) after they were added."""
        seed = generate_plaintext()
        raw = derive_private_key(seed).public_key()
        mine = (await self.user_public_keys([self.user_id]))[self.user_id]
        edek = encrypt(seed, mine, self._signer())
        created = await self._call(
            "POST",
            "/v1/groups",
            {
                "id": group_id,
                "public_key": b64e(raw.to_bytes()),
                "encrypted_group_key": b64e(edek.to_bytes()),
                "forward_only": forward_only,
            },
        )
        public = PublicKey.from_bytes(b64d(created["public_key"], "public_key"))
        part = PublicKey.from_bytes(b64d(created["service_part"], "service_part"))
        if public != augment_public_key(raw, part):
            raise SdkError("the service returned an inconsistent group key")
        statement = self._signer().sign(
            GROUP_KEY_LABEL, group_key_message(group_id, public.to_bytes())
        )
        await self._call(
            "PUT", f"/v1/groups/{_segment(group_id)}/key-statement", {"signature": b64e(statement)}
        )
        self.ks.pinned_groups[group_id] = public.to_bytes()
        self.ks.save()
        if join:  # the creator reads what is shared with the group, like any member
            await self.add_member(group_id, self.user_id)
        return public

    async def register_group_value(
        self, group_id: str, edek: bytes, *, members: Iterable[str]
    ) -> None:
        """Manager: register a value encrypted to a forward-only group, so that its current
        members (and only those added so far) can have it transformed. ``members`` is who
        the manager expects in the group; the service refuses (``membership_mismatch``)
        unless they are exactly its members."""
        body = {"edek": b64e(edek), "members_digest": b64e(members_digest(members))}
        await self._call("POST", f"/v1/groups/{_segment(group_id)}/values", body)

    async def claim_group_management(self, group_id: str) -> str | None:
        """Admin: become the manager of a forward-only group; returns who managed it."""
        result = await self._call("PUT", f"/v1/groups/{_segment(group_id)}/manager", {})
        previous = result.get("previous")
        return previous if isinstance(previous, str) else None

    async def ban_member(self, group_id: str, user_id: str) -> None:
        """Manager: remove a user from a forward-only group until the ban is lifted."""
        await self._call("PUT", f"/v1/groups/{_segment(group_id)}/bans/{_segment(user_id)}", {})

    async def lift_ban(self, group_id: str, user_id: str) -> None:
        """Manager: let a banned user be added again."""
        await self._call("DELETE", f"/v1/groups/{_segment(group_id)}/bans/{_segment(user_id)}")

    async def group(self, group_id: str) -> GroupInfo:
        """What the key service says of a group (members and admins see more)."""
        return GroupInfo.from_json(await self._call("GET", f"/v1/groups/{_segment(group_id)}"))

    async def group_public_key(self, group_id: str) -> PublicKey:
        """The group's key: pinned on first sight, and only if an admin device, certified
        by its pinned user, signed it; a later change raises KeyChangedError."""
        info = await self.group(group_id)
        key = b64d(info.public_key, "public_key")
        pinned = self.ks.pinned_groups.get(group_id)
        if pinned is None:
            if not info.key_statement or info.key_statement_device is None:
                raise SdkError("the group key carries no admin statement")
            device = await self._call("GET", f"/v1/devices/{_segment(info.key_statement_device)}")
            if device["user_id"] not in info.admins:
                raise SdkError("the group key was stated by a non-admin")
            expected = self.ks.group_admins.get(group_id)
            if expected is not None and device["user_id"] not in expected:
                raise SdkError("the group key was stated by a user this client does not expect")
            signer = await self._certified(device)
            try:
                signer.verify(
                    GROUP_KEY_LABEL,
                    group_key_message(group_id, key),
                    b64d(info.key_statement, "key_statement"),
                )
            except SignatureError:
                raise SdkError("the group key statement does not verify") from None
        self._pin(f"group {group_id}", pinned, key)
        self.ks.pinned_groups[group_id] = key
        self.ks.save()
        return PublicKey.from_bytes(key)

    def expect_group_admins(self, group_id: str, user_ids: Sequence[str]) -> None:
        """Name who runs a group (from the application's own configuration): its key is
        then accepted only if one of these users vouches for it, whatever admins the key
        service lists. Without it, a group's key is trusted on first use."""
        if isinstance(user_ids, str) or not user_ids:
            raise TypeError("user_ids must be a non-empty list of user ids")
        self.ks.group_admins[group_id] = sorted(user_ids)
        self.ks.save()

    async def list_groups(self) -> list[str]:
        return list((await self._call("GET", "/v1/groups"))["groups"])

    async def _group_seed(self, group_id: str) -> Plaintext:
        """The group's private key seed, through this admin's EDEK; kept in memory for the
        group's life (a manager adds many members), forgotten when it is deleted."""
        seed = self._seeds.get(group_id)
        if seed is None:
            data = await self._call("GET", f"/v1/groups/{_segment(group_id)}/admin-key")
            seed = self._seeds[group_id] = await self._unwrap(b64d(data["edek"], "edek"))
        return seed

    async def add_members(self, group_id: str, user_ids: Sequence[str]) -> dict[str, str | None]:
        """Admin: add many users at once (256 per request); each user's outcome, None when
        it was added, or the refusal's code (``banned``, ``not_found``...)."""
        group_key = derive_private_key(await self._group_seed(group_id))
        keys = await self.find_user_keys(user_ids)
        outcome: dict[str, str | None] = {u: "not_found" for u in user_ids if u not in keys}
        items = []
        for uid in sorted(keys):
            tk = generate_transform_key(group_key, PublicKey.from_bytes(keys[uid].public_key),
                                        self._signer())  # fmt: skip
            items.append({"user": uid, "transform_key": b64e(tk.key.to_bytes())})
        for i in range(0, len(items), 256):
            data = await self._call(
                "POST", f"/v1/groups/{_segment(group_id)}/members", {"members": items[i : i + 256]}
            )
            for uid, problem in data["results"].items():
                outcome[str(uid)] = None if problem is None else str(problem.get("code"))
        return outcome

    async def add_member(self, group_id: str, user_id: str) -> None:
        group_key = derive_private_key(await self._group_seed(group_id))
        member = (await self.user_public_keys([user_id]))[user_id]
        tk = generate_transform_key(group_key, member, self._signer())
        await self._call(
            "PUT",
            f"/v1/groups/{_segment(group_id)}/members/{_segment(user_id)}",
            {"transform_key": b64e(tk.key.to_bytes())},
        )

    async def remove_member(self, group_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/v1/groups/{_segment(group_id)}/members/{_segment(user_id)}")

    async def add_admin(self, group_id: str, user_id: str) -> None:
        seed = await self._group_seed(group_id)
        admin = (await self.user_public_keys([user_id]))[user_id]
        edek = encrypt(seed, admin, self._signer())
        await self._call(
            "PUT",
            f"/v1/groups/{_segment(group_id)}/admins/{_segment(user_id)}",
            {"encrypted_group_key": b64e(edek.to_bytes())},
        )

    async def remove_admin(self, group_id: str, user_id: str) -> None:
        await self._call("DELETE", f"/v1/groups/{_segment(group_id)}/admins/{_segment(user_id)}")

    async def preapprove(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._call(
            "POST",
            f"/v1/groups/{_segment(group_id)}/preapproved",
            {"user_ids": _ids(user_ids, "user_ids")},
        )

    async def delete_group(self, group_id: str) -> None:
        await self._call("DELETE", f"/v1/groups/{_segment(group_id)}")
        self._seeds.pop(group_id, None)

    # --- documents ---

    async def _recipients(
        self, users: Sequence[str], groups: Sequence[str]
    ) -> list[tuple[str, str, PublicKey]]:
        users, groups = _ids(users, "users"), _ids(groups, "groups")
        out = (
            [("user", u, k) for u, k in (await self.user_public_keys(users)).items()]
            if users
            else []
        )
        for g in groups:
            out.append(("group", g, await self.group_public_key(g)))
        if not out:
            raise SdkError("a document needs at least one user or group")
        return out

    async def encrypt_document(
        self,
        doc_id: str,
        data: bytes,
        *,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        managed: bool = True,
    ) -> Envelope:
        """Seal ``data``; with ``managed`` the service keeps the EDEKs and their grants."""
        data = _bytes(data, "data")
        if not isinstance(doc_id, str):
            raise TypeError(f"doc_id must be a str, not {type(doc_id).__name__}")
        recipients = await self._recipients(users, groups)
        env = seal(data, doc_id.encode(), [k for _, _, k in recipients], self._signer())
        if managed:
            await self._call(
                "POST",
                "/v1/documents",
                {
                    "id": doc_id,
                    "grants": [
                        {"kind": kind, "id": rid, "edek": b64e(e.to_bytes())}
                        for (kind, rid, _), e in zip(recipients, env.edeks, strict=True)
                    ],
                },
            )
        return env

    async def encrypt_stream(
        self,
        doc_id: str,
        src: BinaryIO,
        dst: BinaryIO,
        *,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        """Seal a large object (a recording, a file) in chunks, in constant memory; the
        service keeps its EDEKs as a managed document's grants."""
        recipients = await self._recipients(users, groups)
        head = seal_stream(
            src,
            dst,
            doc_id.encode(),
            [k for _, _, k in recipients],
            self._signer(),
            chunk_size=chunk_size,
        )
        await self._call(
            "POST",
            "/v1/documents",
            {
                "id": doc_id,
                "grants": [
                    {"kind": kind, "id": rid, "edek": b64e(e.to_bytes())}
                    for (kind, rid, _), e in zip(recipients, head.edeks, strict=True)
                ],
            },
        )

    async def decrypt_stream(
        self, src: BinaryIO, dst: BinaryIO, *, any_sealer: bool = False
    ) -> OpenedStream:
        """Open a sealed stream from any current device: its size, sealer and owner.

        The plaintext goes to a temporary file first and reaches ``dst`` only once the
        sealer's trailer signature has verified and the sealer is a device of the owner (or
        ``any_sealer`` accepts another), so forged chunks are never released.
        """
        head, raw = read_header(src)
        source, owner = await self._document_source(_doc_id(head.object_id))
        key, sealer = await self._signed_by(head.signer)
        with tempfile.TemporaryFile() as staging:
            written = open_stream(src, staging, (head, raw), source, sealer=key)
            _check_authorship(sealer, owner, any_sealer)
            staging.seek(0)
            shutil.copyfileobj(staging, dst, 1 << 20)
        return OpenedStream(written, sealer, owner)

    async def _unwrap_for(self, doc_id: str) -> Plaintext:
        """The DEK source of a managed document, through the grant that reaches us."""
        return (await self._document_source(doc_id))[0]

    async def _document_source(self, doc_id: str) -> tuple[Plaintext, str]:
        """The DEK source of a managed document and its owner.

        Only the owner may grant (the service enforces it, and refuses grant keys not made
        by the owner's devices), so the owner is the user whose device made the EDEK that
        reaches us: a signature this device checks itself. The owner the service names must
        agree; a service that lists another is refused rather than believed.
        """
        data = await self._call("GET", f"/v1/documents/{_segment(doc_id)}/key")
        source, granter = await self._unwrap_made_by(b64d(data["edek"], "edek"))
        if data.get("owner") != granter.user_id:
            raise AuthorshipError(
                "the key service names another owner than the user who granted the key",
                owner=granter.user_id,
            )
        return source, granter.user_id

    async def open_document(
        self, envelope: Envelope, *, any_sealer: bool = False
    ) -> OpenedDocument:
        """Open a managed document with the grant that reaches this device: its data, the
        device that sealed it and its owner. A document sealed by a device of anyone but its
        owner raises :class:`AuthorshipError`, unless ``any_sealer`` accepts it (the result
        then names who sealed it, for the application to show)."""
        envelope = _envelope(envelope)
        source, owner = await self._document_source(_doc_id(envelope.object_id))
        return await self._open(envelope, source, owner, any_sealer)

    async def decrypt_document(self, envelope: Envelope) -> bytes:
        """The data of :meth:`open_document`, only if the document's owner sealed it."""
        return (await self.open_document(envelope)).data

    async def open_unmanaged(
        self, envelope: Envelope, index: int, target: Target, *, any_sealer: bool = False
    ) -> OpenedDocument:
        """Open an unmanaged document or message: the caller names which EDEK (``index``
        into ``envelope.edeks``) and whom it is for. It has no owner at the service; its
        owner is the user whose device made that EDEK, and by default the sealer must be a
        device of that user."""
        envelope, target = _envelope(envelope), _target(target)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("index must be an int")
        if not 0 <= index < len(envelope.edeks):
            raise ValueError(f"the envelope has {len(envelope.edeks)} EDEKs; no index {index}")
        data = await self._call(
            "POST",
            "/v1/transform",
            {
                "edek": b64e(envelope.edeks[index].to_bytes()),
                "target": {"kind": target.kind, "id": target.id},
            },
        )
        source, maker = await self._unwrap_made_by(b64d(data["edek"], "edek"))
        return await self._open(envelope, source, maker.user_id, any_sealer)

    def _open_sealed_to_device(self, envelope: Envelope, sealer: VerifyingKey) -> bytes:
        """Open an envelope sealed to this device's own PRE key (one EDEK, level 0) by the
        device whose signing key is ``sealer``: no key service. A meeting's manager seals
        each participant's key-tree path so. Any failure is :class:`DecryptionError`."""
        if self.ks.device_key is None or len(envelope.edeks) != 1:
            raise DecryptionError()
        try:
            return open_with_key(
                envelope, envelope.edeks[0], self.ks.device_key, origin_signer=sealer
            )
        except (MalformedInputError, SignatureError):
            raise DecryptionError() from None

    async def decrypt_unmanaged(self, envelope: Envelope, index: int, target: Target) -> bytes:
        """The data of :meth:`open_unmanaged`, only if its keys' maker sealed it."""
        return (await self.open_unmanaged(envelope, index, target)).data

    async def _open(
        self, envelope: Envelope, source: Plaintext, owner: str, any_sealer: bool
    ) -> OpenedDocument:
        """The EDEK's origin and the envelope's sealer are checked each on its own (a grant
        made later by another device of the owner still opens), then compared by user."""
        key, sealer = await self._signed_by(envelope.signer)
        data = open_envelope(envelope, source, sealer=key)
        _check_authorship(sealer, owner, any_sealer)
        return OpenedDocument(data, sealer, owner)

    async def grant(self, document: str | Envelope, to: Target) -> None:
        """Let one more user or group read a managed document or stream (by id, or its
        envelope), without re-encrypting it: this device unwraps the DEK source and
        encrypts it once more to ``to``; the data is not touched. Only the owner grants."""
        doc_id, to = _document_id(document), _target(to)
        source = await self._unwrap_for(doc_id)
        ((kind, rid, key),) = await self._recipients(
            [to.id] if to.kind == "user" else [], [to.id] if to.kind == "group" else []
        )
        edek = encrypt(source, key, self._signer())
        await self._call(
            "PUT",
            f"/v1/documents/{_segment(doc_id)}/grants/{_segment(kind)}/{_segment(rid)}",
            {"edek": b64e(edek.to_bytes())},
        )

    async def revoke(self, document: str | Envelope, target: Target) -> None:
        """Take a grant of a managed document away from ``target`` (the data is not
        re-encrypted: a copy the target already opened stays readable to it)."""
        doc_id, target = _document_id(document), _target(target)
        await self._call(
            "DELETE",
            f"/v1/documents/{_segment(doc_id)}/grants/{_segment(target.kind)}/"
            f"{_segment(target.id)}",
        )

    async def list_grants(self, document: str | Envelope) -> list[Grant]:
        """Who may read a managed document (its owner, or one it was granted to, asks)."""
        doc_id = _document_id(document)
        data = await self._call("GET", f"/v1/documents/{_segment(doc_id)}/grants")
        return [Grant.from_json(g) for g in data["grants"]]

    async def delete_document(self, document: str | Envelope) -> None:
        """Owner: delete a managed document's grants at the service; nobody can open it
        after (copies of its ciphertext become unreadable)."""
        await self._call("DELETE", f"/v1/documents/{_segment(_document_id(document))}")

    async def verify_audit(self, *, expect_head: str | None = None) -> AuditReport:
        """The service's check of its audit chain, with its signed head (``head_token``)
        when the chain holds. Keep a head outside the service and pass it as
        ``expect_head`` later: the check then fails if the log no longer extends it (the
        tail was cut, or the log wiped, by someone with database access)."""
        query = urlencode({"expect_head": expect_head}) if expect_head is not None else ""
        return AuditReport.from_json(await self._call("GET", "/v1/audit/verify", query=query))


#: Seconds a call may spend waiting, as ``Retry-After`` asks, on a 429 or 503 before it
#: raises :class:`ServiceRefusedError`.
SHED_WAIT_SECONDS: Final[float] = 10.0
_JITTER: Final = secrets.SystemRandom()


def _shed_wait(response: httpx.Response) -> float | None:
    """The seconds a 429 or 503 asks to wait (``Retry-After``, whole seconds), or None."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "")
    if not value.isdigit():
        return None
    return float(min(int(value), 60))


def _check_authorship(sealer: Sealer, owner: str, any_sealer: bool) -> None:
    """Refuse content that a device of someone other than ``owner`` sealed, unless the
    application accepts any certified sealer."""
    if sealer.user_id != owner and not any_sealer:
        raise AuthorshipError(
            f"sealed by device {sealer.device_id} of {sealer.user_id}, not by the owner {owner}",
            owner=owner,
            sealer=sealer,
        )
