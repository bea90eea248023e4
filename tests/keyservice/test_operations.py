"""The key service run as a service: health and readiness, metrics, request ids, the
per-user rate limit and the transform queue, a 405's Allow, trailing slashes, the secrets
file written atomically, and nonces that do not pile up."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sealroom.api.encoding import b64e
from sealroom.api.reqsig import sign_request
from sealroom.crypto.pre import encrypt, generate_plaintext
from sealroom.keyservice import service_keys
from sealroom.keyservice.service_keys import ServiceKeys
from sealroom.ops.limits import OverloadedError, WorkQueue
from sealroom.sdk import SyncClient

from .conftest import Env

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
def test_health_readiness_and_metrics(env: Env) -> None:
    http = env.http()
    assert http.get("/healthz").json() == {"ok": True}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "idp_keys": "ok"}}
    http.get("/v1/service")
    http.get("/v1/devices/nobody")  # 401: counted by route template, not by raw path
    text = http.get("/metrics").text
    assert 'route="/v1/service",service="keyservice",status="200"' in text
    assert 'route="/v1/devices/{id}",service="keyservice",status="401"' in text
    assert "sealroom_http_request_duration_seconds_bucket" in text


@SQLITE
def test_a_request_id_is_returned_and_an_offered_one_kept(env: Env) -> None:
    http = env.http()
    fresh = http.get("/v1/service").headers["x-request-id"]
    assert len(fresh) == 16
    assert http.get("/v1/service").headers["x-request-id"] != fresh
    kept = http.get("/v1/service", headers={"x-request-id": "proxy-id-1234"})
    assert kept.headers["x-request-id"] == "proxy-id-1234"
    junk = http.get("/v1/service", headers={"x-request-id": "a b\\c"})  # not a plain token
    assert junk.headers["x-request-id"] != "a b\\c"


@SQLITE
def test_a_405_names_every_method_of_the_route_in_allow(env: Env) -> None:
    http = env.http()
    answer = http.delete("/v1/service")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert answer.json()["code"] == "method_not_allowed"
    answer = http.patch("/v1/groups")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


@SQLITE
def test_a_trailing_slash_is_answered_with_a_problem_document(env: Env) -> None:
    answer = env.http().get("/v1/service/?x=1", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/v1/service?x=1"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "moved"
    nothing = env.http().get("/v1/nothing/", follow_redirects=False)
    assert nothing.status_code == 404
    assert nothing.json()["code"] == "not_found"


def _group_edek(alice: SyncClient, group: str) -> bytes:
    signer = alice.client.ks.signing_key
    assert signer is not None
    return encrypt(generate_plaintext(), alice.group_public_key(group), signer).to_bytes()


def _signed(client: SyncClient, path: str, body: bytes) -> dict[str, str]:
    ks = client.client.ks
    assert ks.signing_key is not None
    assert ks.device_id is not None
    headers = sign_request(
        ks.signing_key,
        ks.device_id,
        method="POST",
        path=path,
        query="",
        body=body,
        now=__import__("time").time(),
    )
    return headers | {"content-type": "application/json"}


@SQLITE
def test_a_user_over_its_rate_gets_429_with_retry_after(
    make_env: Callable[..., Env], database_url: str
) -> None:
    env = make_env(database_url, rate_limit=0.5, rate_burst=5)
    try:

        def me(user: str) -> httpx.Response:
            token = env.idp.issue(user, "sealroom-keyservice")
            return env.http().get("/v1/users/me", headers={"authorization": "Bearer " + token})

        statuses = [me("alice").status_code for _ in range(8)]
        assert statuses == [404] * 5 + [429] * 3  # no such user yet: judged, then limited
        limited = me("alice")
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert me("bob").status_code == 404  # another user is not held back by alice
    finally:
        env.close()


@SQLITE
def test_a_full_transform_queue_answers_503_at_once(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("g")
        alice.add_member("g", "bob")
        body = json.dumps(
            {"edek": b64e(_group_edek(alice, "g")), "target": {"kind": "group", "id": "g"}}
        ).encode()
        ok = env.http().post(
            "/v1/transform", content=body, headers=_signed(bob, "/v1/transform", body)
        )
        assert ok.status_code == 200
        work = env.parts.work
        assert work is not None
        work.pending = work.limit  # as if that many transforms were queued right now
        try:
            shed = env.http().post(
                "/v1/transform", content=body, headers=_signed(bob, "/v1/transform", body)
            )
        finally:
            work.pending = 0
        assert shed.status_code == 503
        assert shed.json()["code"] == "overloaded"
        assert int(shed.headers["retry-after"]) >= 1
        text = env.http().get("/metrics").text
        assert 'sealroom_transforms_total{outcome="shed"}' in text


def test_the_work_queue_admits_up_to_its_limit_and_sheds_the_rest() -> None:
    async def run() -> tuple[int, int, int]:
        queue = WorkQueue(concurrency=2, queue=3)
        gate = asyncio.Event()
        running = 0
        peak = 0

        async def job() -> str:
            nonlocal running, peak
            try:
                async with queue.admit():
                    running += 1
                    peak = max(peak, running)
                    await gate.wait()
                    running -= 1
                    return "done"
            except OverloadedError:
                return "shed"

        tasks = [asyncio.create_task(job()) for _ in range(9)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks)
        # A batch heavier than the whole queue still runs when nothing else is in.
        async with queue.admit(weight=50):
            pass
        return results.count("done"), results.count("shed"), peak

    done, shed, peak = asyncio.run(run())
    assert (done, shed, peak) == (5, 4, 2)


def test_the_secrets_file_is_never_left_empty_or_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets.json"

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # The write fails half-way (here: the disk is full while the keys go out).
    with monkeypatch.context() as m:
        m.setattr(service_keys.json, "dump", disk_full)
        m.setattr(service_keys.json, "dumps", disk_full)
        with pytest.raises(OSError, match="No space"):
            ServiceKeys.load_or_create(path)
    assert not path.exists()
    with monkeypatch.context() as m:
        m.setattr(service_keys.os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space"):
            ServiceKeys.load_or_create(path)
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial file either
    keys = ServiceKeys.load_or_create(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert ServiceKeys.load_or_create(path).master_key == keys.master_key


def test_two_workers_creating_the_secrets_file_agree(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: ServiceKeys.load_or_create(path).master_key, range(16)))
    assert len(set(made)) == 1


def _nonces(env: Env, device: str | None = None) -> int:
    with env.parts.db.transaction() as tx:
        if device is None:
            row = tx.one("SELECT COUNT(*) AS n FROM nonces")
        else:
            row = tx.one("SELECT COUNT(*) AS n FROM nonces WHERE device_id = ?", (device,))
    assert row is not None
    return int(row["n"])


@SQLITE
def test_nonces_of_rotated_and_revoked_devices_are_deleted(
    make_env: Callable[..., Env], database_url: str
) -> None:
    env = make_env(database_url)
    try:
        with env.client("alice") as alice, env.client("alice", "phone") as phone:
            alice.initialize()
            phone.initialize()
            old = alice.client.device_id
            alice.user_public_keys(["alice"])  # a signed change-or-query: its nonce is kept
            assert _nonces(env, old) > 0
            alice.rotate_device()
            assert _nonces(env, old) == 0  # it can sign nothing any more
            lost = phone.client.device_id
            phone.user_public_keys(["alice"])
            assert _nonces(env, lost) > 0
            alice.revoke_device(lost)
            assert _nonces(env, lost) == 0
            # A device that simply goes quiet never comes back to delete its own: another
            # device's request deletes every expired nonce, once a minute per process.
            with env.client("bob") as bob:
                bob.initialize()
                quiet = bob.client.device_id
                bob.user_public_keys(["bob"])
                assert _nonces(env, quiet) > 0
                with env.parts.db.transaction() as tx:  # ... and time passes
                    tx.execute("UPDATE nonces SET expires_at = 0 WHERE device_id = ?", (quiet,))
                env.parts.ctx._swept_at -= 61
                alice.user_public_keys(["alice"])
                assert _nonces(env, quiet) == 0
    finally:
        env.close()


@SQLITE
def test_an_unreachable_idp_is_unready_and_logged_once(
    make_env: Callable[..., Env],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    from sealroom.keyservice.app import create_app
    from sealroom.keyservice.settings import Settings

    settings = Settings(
        database_url=database_url,
        secrets_file=tmp_path / "s.json",
        jwks_url="http://127.0.0.1:9/jwks.json",  # nothing listens on port 9
    )
    app = create_app(settings)
    caplog.set_level("INFO", logger="sealroom")
    token = env_idp_token(tmp_path)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ks"
        ) as client:
            answers = [await client.get("/readyz")]
            for _ in range(3):
                answers.append(
                    await client.get("/v1/users/me", headers={"authorization": "Bearer " + token})
                )
                await asyncio.sleep(1.05)
            return answers

    answers = asyncio.run(run())
    app.state.parts.db.close()
    assert answers[0].status_code == 503
    assert "idp_keys" in answers[0].json()["checks"]
    assert answers[0].json()["checks"]["idp_keys"] != "ok"
    failures = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(failures) == 1  # once for the outage, not once per request
    assert failures[0].levelname == "ERROR"
    assert [a.status_code for a in answers[1:]] == [503, 503, 503]
    assert {a.json()["code"] for a in answers[1:]} == {"unavailable"}


def env_idp_token(tmp_path: Path) -> str:
    from sealroom.idp import DevIdp

    return DevIdp(tmp_path / "idp").issue("alice", "sealroom-keyservice")


def _cached(raw: bytes) -> bool:
    from sealroom.keyservice import context

    return any(index[0] == raw for index in context._CACHE._keys)


@SQLITE
def test_deleted_transform_keys_do_not_stay_in_memory(env: Env) -> None:
    with env.client("alice") as alice, env.client("bob") as bob:
        alice.initialize()
        bob.initialize()
        alice.create_group("g")
        alice.add_member("g", "bob")
        doc = alice.encrypt_document("d", b"x", groups=["g"])
        assert bob.decrypt_document(doc) == b"x"  # loads bob's member and device keys
        with env.parts.db.transaction() as tx:
            member = tx.one("SELECT transform_key FROM group_members WHERE user_id = 'bob'")
            device = tx.one(
                "SELECT transform_key FROM devices WHERE id = ?", (bob.client.device_id,)
            )
        assert member is not None
        assert device is not None
        assert _cached(bytes(member["transform_key"]))
        assert _cached(bytes(device["transform_key"]))
        bob.rotate_device()  # the old device's key is deleted, in the database and here
        assert not _cached(bytes(device["transform_key"]))
        alice.delete_group("g")  # and so are the group's member keys
        assert not _cached(bytes(member["transform_key"]))


@SQLITE
def test_the_sdk_waits_as_retry_after_asks_then_goes_on(env: Env) -> None:
    import time

    from sealroom.ops.limits import ClientLimiter

    with env.client("alice") as alice:
        alice.initialize()
        env.parts.users_limiter = ClientLimiter(2.0, 1)  # one at once, then two a second
        began = time.monotonic()
        for _ in range(3):
            alice.list_devices()  # each beyond the first is told 429, Retry-After: 1
        assert time.monotonic() - began >= 2.0
        text = env.http().get("/metrics").text
        assert 'sealroom_rate_limited_total{scope="user",service="keyservice"}' in text
