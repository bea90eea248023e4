"""The Client's inputs and failures: paths, wrong types, network errors, retries, quoting,
and a SyncClient that has every call (no proxy)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from sealroom.api.reqsig import parse_headers
from sealroom.crypto.envelope import seal
from sealroom.crypto.pre import generate_key_pair
from sealroom.crypto.signing import SigningKey
from sealroom.sdk import (
    BasicSplitTrust,
    Client,
    NetworkError,
    SdkError,
    SealroomError,
    ServiceRefusedError,
    SyncClient,
    Target,
)

Handler = Callable[[httpx.Request], httpx.Response]


def _client(tmp_path: Path, handler: Handler, **kwargs: object) -> Client:
    return Client(
        "http://keys.test",
        jwt=lambda audience: "token",
        secret=BasicSplitTrust(lambda: b"\x00" * 16),
        keystore=tmp_path / "device.json",
        transport=httpx.MockTransport(handler),
        **kwargs,  # type: ignore[arg-type]
    )


def _registered(client: Client) -> SigningKey:
    key = SigningKey.generate()
    client.ks.user_id, client.ks.device_id, client.ks.signing_key = "alice", "dev-1", key
    client.ks.registered = True
    return key


def test_a_keystore_path_may_be_a_str_and_tilde_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    c = Client("http://k", jwt=str, secret=BasicSplitTrust(bytes), keystore="~/sr/device.json")
    assert c.ks.path == tmp_path / "sr" / "device.json"
    c2 = Client("http://k", jwt=str, secret=BasicSplitTrust(bytes), keystore=tmp_path / "x.json")
    assert c2.ks.path == tmp_path / "x.json"
    asyncio.run(c.aclose())
    asyncio.run(c2.aclose())


@pytest.mark.parametrize("bad", [b"/tmp/device.json", 42, None])
def test_a_keystore_of_another_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="keystore must be a str or a Path"):
        Client("http://k", jwt=str, secret=BasicSplitTrust(bytes), keystore=bad)  # type: ignore[arg-type]


def test_bytes_where_an_envelope_goes_is_a_type_error_that_says_what_to_do(
    tmp_path: Path,
) -> None:
    requests: list[httpx.Request] = []
    client = _client(tmp_path, lambda r: requests.append(r) or httpx.Response(500))
    _registered(client)
    signer = SigningKey.generate()
    _, public = generate_key_pair()
    env = seal(b"x", b"doc-1", [public], signer)

    async def run() -> None:
        with pytest.raises(TypeError, match=r"Envelope\.from_bytes"):
            await client.open_document(env.to_bytes())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"Envelope\.from_bytes"):
            await client.decrypt_unmanaged(env.to_bytes(), 0, Target.user("a"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Target"):
            await client.decrypt_unmanaged(env, 0, "group")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Target"):
            await client.grant(env, "bob")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="document id"):
            await client.list_grants(b"doc-1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="no index 3"):
            await client.open_unmanaged(env, 3, Target.user("a"))
        with pytest.raises(TypeError, match="users must be a list of ids"):
            await client.encrypt_document("d", b"x", users="bob")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="data must be bytes"):
            await client.encrypt_document("d", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="an id is a str"):
            await client.preapprove("g", [b"bob"])  # type: ignore[list-item]
        await client.aclose()

    asyncio.run(run())
    assert requests == []  # nothing was sent


def test_a_target_is_a_user_or_a_group() -> None:
    assert Target.user("bob") == Target("user", "bob")
    assert Target.group("team").kind == "group"
    with pytest.raises(ValueError, match="'user' or 'group'"):
        Target("device", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Target.user("")


def test_an_unreachable_service_is_a_network_error_after_the_retries(tmp_path: Path) -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ConnectError("connection refused", request=request)

    client = _client(tmp_path, refuse, retries=2, backoff=0.0)

    async def run() -> None:
        with pytest.raises(NetworkError) as caught:
            await client.initialize()
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        assert isinstance(caught.value, SdkError)
        assert isinstance(caught.value, SealroomError)
        await client.aclose()

    asyncio.run(run())
    assert attempts == ["GET", "GET", "GET"]


def test_a_post_whose_fate_is_unknown_is_not_sent_again(tmp_path: Path) -> None:
    attempts: list[str] = []

    def time_out(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ReadTimeout("no answer", request=request)

    client = _client(tmp_path, time_out, retries=3, backoff=0.0)

    async def run() -> None:
        with pytest.raises(NetworkError):
            await client._call("POST", "/v1/users", {}, auth="none")
        with pytest.raises(NetworkError):
            await client._call("GET", "/v1/service", auth="none")
        await client.aclose()

    asyncio.run(run())
    assert attempts == ["POST", "GET", "GET", "GET", "GET"]


def test_a_failing_gateway_is_retried_for_idempotent_calls_only(tmp_path: Path) -> None:
    answers = iter([502, 504, 200, 503, 200])
    seen: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        status = next(answers)
        return httpx.Response(status, json={"code": "upstream", "signing_key": "x"})

    client = _client(tmp_path, flaky, retries=2, backoff=0.0)

    async def run() -> None:
        assert (await client._call("GET", "/v1/service", auth="none"))["signing_key"] == "x"
        with pytest.raises(ServiceRefusedError) as refused:
            await client._call("POST", "/v1/users", {}, auth="none")
        assert refused.value.status == 503
        await client.aclose()

    asyncio.run(run())
    assert seen == ["GET", "GET", "GET", "POST"]


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    answers = iter([httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(200)])
    seen: list[str] = []

    def limited(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return next(answers)

    client = _client(tmp_path, limited, retries=0)

    async def run() -> None:
        await client._call("POST", "/v1/users", {}, auth="none")  # a 429 was not processed
        await client.aclose()

    asyncio.run(run())
    assert seen == ["POST", "POST"]


def test_the_timeout_is_configurable(tmp_path: Path) -> None:
    client = _client(tmp_path, lambda r: httpx.Response(200), timeout=2.5)
    assert client._http.timeout == httpx.Timeout(2.5)
    asyncio.run(client.aclose())


def test_path_segments_are_quoted_and_the_signature_covers_what_the_service_sees(
    tmp_path: Path,
) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={})

    client = _client(tmp_path, record)
    key = _registered(client)

    async def run() -> None:
        await client.remove_member("team/../admin", "bob?x=1")
        await client.aclose()

    asyncio.run(run())
    (request,) = requests
    raw = request.url.raw_path.decode()
    assert raw == "/v1/groups/team%2F..%2Fadmin/members/bob%3Fx%3D1"
    assert request.url.query == b""
    signed = parse_headers(request.headers)
    assert signed is not None
    signed.verify(key.verifying_key, "DELETE", unquote(raw), "", b"")


def test_the_sync_client_has_every_call_of_the_client_with_the_same_arguments() -> None:
    for name, member in vars(Client).items():
        if name.startswith("_") or name == "aclose":
            continue
        assert hasattr(SyncClient, name), name
        if inspect.iscoroutinefunction(member):
            ours = inspect.signature(getattr(SyncClient, name))
            theirs = inspect.signature(member)
            assert ours.parameters == theirs.parameters, name
            assert ours.return_annotation == theirs.return_annotation, name
    assert "__getattr__" not in vars(SyncClient)
    assert inspect.signature(SyncClient.__init__).parameters == (
        inspect.signature(Client.__init__).parameters
    )
