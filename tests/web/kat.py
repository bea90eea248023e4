"""Known-answer cases for the web core, made by the real Python code on every run.

:func:`write_cases` writes ``cases.json``: keys, EDEKs at levels 0-2 from the real transform
path, envelopes, a stream, SFrame frames for all five suites, signed board messages, signed
requests, and a tampered variant of each with the outcome Python gives it. Bytes are hex and
64-bit integers are decimal strings (JavaScript reads neither as a double). The node tests
check that JavaScript gives the same answers; :mod:`tests.web.test_web_kat` then checks the
values JavaScript made (``js-made.json``) with the Python code.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealroom.api.encoding import b64d, b64e
from sealroom.api.identity import device_certificate_message, user_signing_key
from sealroom.api.reqsig import parse_headers, sign_request
from sealroom.crypto import labels
from sealroom.crypto import pairing as pr
from sealroom.crypto.envelope import Envelope, open_envelope, seal
from sealroom.crypto.escrow import (
    Argon2idParams,
    EscrowSecret,
    combine_split_secret,
    open_private_key,
    seal_private_key,
)
from sealroom.crypto.pre import (
    AugmentationSecret,
    EncryptedValue,
    PublicKey,
    augment_public_key,
    augment_transform_key,
    decrypt,
    derive_private_key,
    derive_symmetric_key,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
    transform,
)
from sealroom.crypto.signing import SigningKey
from sealroom.crypto.stream import open_stream, read_header, seal_stream
from sealroom.errors import DecryptionError, MalformedInputError, SealroomError, WrongSecretError
from sealroom.media.keys import Sender, kid_for, sender_base_key
from sealroom.media.sframe import SFrameContext
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.roster import roster_head as _roster_hash
from sealroom.meeting.session import ratchet, security_code
from tests.crypto import curve_helpers as ch

H = bytes.hex


def _flip(data: bytes, index: int, mask: int = 1) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def _outcome(fn: Callable[[], object]) -> str:
    """How Python ends: 'ok', 'malformed' (a decoder refused) or 'decryption'."""
    try:
        fn()
    except MalformedInputError:
        return "malformed"
    except DecryptionError:
        return "decryption"
    except SealroomError as exc:  # pragma: no cover - the cases only use the two above
        return type(exc).__name__
    return "ok"


class _World:
    """The actors: a group, a user (augmented by the service), a device, signers."""

    def __init__(self) -> None:
        self.admin, self.service, self.mallory = (SigningKey.generate() for _ in range(3))
        self.secret = AugmentationSecret.generate()
        self.group_priv, self.group_pub = generate_key_pair()
        self.user_priv, user_raw = generate_key_pair()
        self.user_pub = augment_public_key(user_raw, self.secret.public_part())
        self.user_signer = user_signing_key(self.user_priv)
        self.device_priv, self.device_pub = generate_key_pair()
        self.group_to_user = generate_transform_key(self.group_priv, self.user_pub, self.admin)
        raw = generate_transform_key(self.user_priv, self.device_pub, self.user_signer)
        self.user_to_device = augment_transform_key(raw, self.secret, self.service)

    def level(self, value: EncryptedValue, n: int) -> EncryptedValue:
        keys = [self.group_to_user, self.user_to_device][2 - n :]
        return transform(value, keys, self.service) if n else value

    def decrypt(
        self, value: EncryptedValue, pin_origin: SigningKey, pin_service: SigningKey
    ) -> Any:
        return decrypt(
            value,
            self.device_priv,
            origin_signer=pin_origin.verifying_key,
            transformer=pin_service.verifying_key,
        )


# --- pairing -----------------------------------------------------------------------------


def _pairing_cases() -> dict[str, Any]:
    g1, g2 = pr.G1.generator(), pr.G2.generator()
    scalars = []
    for _ in range(3):
        a, b = pr.Scalar.random(), pr.Scalar.random()
        scalars.append(
            {
                "a": H(a.expose_bytes()),
                "b": H(b.expose_bytes()),
                "sum": H((a + b).expose_bytes()),
                "difference": H((a - b).expose_bytes()),
                "product": H((a * b).expose_bytes()),
                "inverse_a": H(a.inverse().expose_bytes()),
                "g1_a": H(g1.mul_public(a).to_bytes()),
                "g2_b": H(g2.mul_public(b).to_bytes()),
                "g1_sum": H((g1.mul_public(a) + g1.mul_public(b)).to_bytes()),
                "gt_a": H(pr.GT.generator().pow_public(a).to_bytes()),
                "pair_a_b": H(pr.pair(g1.mul_public(a), g2.mul_public(b)).to_bytes()),
            }
        )
    hashes = []
    for label, data in [(b"sealroom/v1/test", b""), (labels.HASH_TO_G2, os.urandom(576))]:
        hashes.append(
            {
                "label": H(label),
                "data": H(data),
                "scalar": H(pr.hash_to_scalar(label, data).expose_bytes()),
            }
        )
    r = pr.R
    bad_scalars = [
        r.to_bytes(32, "little"),
        (r + 1).to_bytes(32, "little"),
        b"\xff" * 32,
        bytes(31),
        bytes(33),
    ]
    g1_raw, g2_raw = g1.to_bytes(), g2.to_bytes()
    bad_g1 = [
        *ch.g1_on_curve_not_in_subgroup(),
        ch.g1_not_on_curve(),
        bytes(48),  # the identity
        g1_raw[:-1],
        g1_raw + b"\x00",
        _flip(g1_raw, 0),
        ch.g1_encoding(pr.P + 1, False),  # x not below p
    ]
    bad_g2 = [
        *ch.g2_on_curve_not_in_subgroup(),
        ch.g2_not_on_curve(),
        bytes(96),
        g2_raw[:-1],
        _flip(g2_raw, 5),
    ]
    gt_raw = pr.GT.generator().to_bytes()
    bad_gt = [
        ch.gt_unitary_not_in_gt(1),
        ch.gt_unitary_not_in_gt(2),
        ch.gt_minus_one(),
        ch.gt_passes_frobenius_test_but_not_unitary(3),
        bytes(576),
        (pr.P).to_bytes(48, "little") + gt_raw[48:],
        gt_raw[:-1],
        _flip(gt_raw, 100),
    ]
    for raw in bad_g1:
        assert _outcome(lambda raw=raw: pr.G1.from_bytes(raw)) == "malformed"
    for raw in bad_g2:
        assert _outcome(lambda raw=raw: pr.G2.from_bytes(raw)) == "malformed"
    for raw in bad_gt:
        assert _outcome(lambda raw=raw: pr.GT.from_bytes(raw)) == "malformed"
    return {
        "r": str(pr.R),
        "p": str(pr.P),
        "g1_generator": H(g1.to_bytes()),
        "g2_generator": H(g2.to_bytes()),
        "gt_generator": H(gt_raw),
        "scalars": scalars,
        "hash_to_scalar": hashes,
        "bad_scalars": [H(s) for s in bad_scalars],
        "bad_g1": [H(x) for x in bad_g1],
        "bad_g2": [H(x) for x in bad_g2],
        "bad_gt": [H(x) for x in bad_gt],
        "random_gt": [H(pr.GT.random().to_bytes()) for _ in range(3)],
    }


# --- PRE ---------------------------------------------------------------------------------


def _tampered_values(w: _World, value: EncryptedValue) -> list[dict[str, Any]]:
    raw = value.to_bytes()
    variants: list[tuple[str, bytes, str, str]] = [
        ("truncated", raw[:-1], "admin", "service"),
        ("extended", raw + b"\x00", "admin", "service"),
        ("version", _flip(raw, 0), "admin", "service"),
        ("tag", _flip(raw, 1), "admin", "service"),
        ("level", _flip(raw, 2), "admin", "service"),
        ("R", _flip(raw, 3 + 10), "admin", "service"),
        ("C", _flip(raw, 51 + 200), "admin", "service"),
        ("auth", _flip(raw, 627), "admin", "service"),
        ("origin signer", _flip(raw, 659), "admin", "service"),
        ("origin signature", _flip(raw, 691), "admin", "service"),
        ("wrong origin pinned", raw, "mallory", "service"),
    ]
    if value.level:
        variants.append(("wrong transformer pinned", raw, "admin", "mallory"))
        end = 755 + value.level * 1248
        variants += [
            ("block X", _flip(raw, 755 + 7), "admin", "service"),
            ("block E", _flip(raw, 755 + 48 + 9), "admin", "service"),
            ("block Er", _flip(raw, 755 + 672 + 30), "admin", "service"),
            ("transform signer", _flip(raw, end), "admin", "service"),
            ("transform signature", _flip(raw, end + 32), "admin", "service"),
        ]
        # A valid GT element where another belongs: parses, then fails to decrypt.
        swapped = bytearray(raw)
        swapped[51 : 51 + 576] = pr.GT.generator().to_bytes()
        variants.append(("C replaced by a valid element", bytes(swapped), "admin", "service"))
    out = []
    signers = {"admin": w.admin, "mallory": w.mallory, "service": w.service}
    for why, data, origin, service in variants:

        def attempt(data: bytes = data, origin: str = origin, service: str = service) -> Any:
            return w.decrypt(EncryptedValue.from_bytes(data), signers[origin], signers[service])

        outcome = _outcome(attempt)
        assert outcome in ("malformed", "decryption"), (why, outcome)
        out.append(
            {
                "why": why,
                "value": H(data),
                "pin_origin": origin,
                "pin_transformer": service,
                "expect": outcome,
            }
        )
    return out


def _pre_cases(w: _World) -> dict[str, Any]:
    edeks, tampered = [], []
    for level in (0, 1, 2):
        plaintext = generate_plaintext()
        to = {0: w.device_pub, 1: w.user_pub, 2: w.group_pub}[level]
        value = w.level(encrypt(plaintext, to, w.admin), level)
        assert w.decrypt(value, w.admin, w.service) == plaintext
        edeks.append(
            {
                "level": level,
                "value": H(value.to_bytes()),
                "plaintext": H(plaintext.expose_secret_bytes()),
                "dek": H(derive_symmetric_key(plaintext).expose_secret_bytes()),
                "derived_private_key": H(derive_private_key(plaintext).expose_secret_bytes()),
                "derived_public_key": H(derive_private_key(plaintext).public_key().to_bytes()),
            }
        )
        tampered += [dict(t, level=level) for t in _tampered_values(w, value)]
    tk = w.group_to_user.key
    tk_raw = tk.to_bytes()
    return {
        "device_private_key": H(w.device_priv.expose_secret_bytes()),
        "device_public_key": H(w.device_pub.to_bytes()),
        "user_private_key": H(w.user_priv.expose_secret_bytes()),
        "user_public_key": H(w.user_pub.to_bytes()),
        "user_signing_key": H(w.user_signer.verifying_key.to_bytes()),
        "admin": H(w.admin.verifying_key.to_bytes()),
        "service": H(w.service.verifying_key.to_bytes()),
        "mallory": H(w.mallory.verifying_key.to_bytes()),
        "edeks": edeks,
        "tampered": tampered,
        "transform_key": {"key": H(tk_raw), "signer": H(w.admin.verifying_key.to_bytes())},
        "bad_transform_keys": [H(tk_raw[:-1]), H(tk_raw + b"\x00"), H(_flip(tk_raw, 1))],
        "forged_transform_key": H(_flip(tk_raw, 500)),  # parses or not; never verifies
        "bad_public_keys": [
            H(w.user_pub.to_bytes()[:-1]),
            H(b"\x01\x01" + bytes(48)),
            H(_flip(w.user_pub.to_bytes(), 0)),
        ],
        "bad_private_keys": [
            H(b"\x01\x02" + bytes(32)),
            H(b"\x01\x02" + pr.R.to_bytes(32, "little")),
        ],
    }


# --- envelopes and streams ------------------------------------------------------------------


def _envelope_cases(w: _World) -> dict[str, Any]:
    data = os.urandom(300)
    env = seal(data, b"doc-1", [w.group_pub, w.user_pub], w.admin)
    edek = w.level(env.edeks[0], 2)
    raw = env.to_bytes()
    source = w.decrypt(edek, w.admin, w.service)
    assert open_envelope(env, source, sealer=w.admin.verifying_key) == data
    variants = [
        ("ciphertext", _flip(raw, 2 + 2 + 5 + 12 + 4 + 3), "admin"),
        ("object id", _flip(raw, 4), "admin"),
        ("signature", _flip(raw, len(raw) - 1), "admin"),
        ("wrong sealer pinned", raw, "mallory"),
        ("truncated", raw[:-1], "admin"),
        ("extended", raw + b"\x00", "admin"),
    ]
    signers = {"admin": w.admin, "mallory": w.mallory}
    tampered = []
    for why, blob, sealer in variants:

        def attempt(blob: bytes = blob, sealer: str = sealer) -> Any:
            return open_envelope(
                Envelope.from_bytes(blob), source, sealer=signers[sealer].verifying_key
            )

        outcome = _outcome(attempt)
        assert outcome in ("malformed", "decryption"), why
        tampered.append({"why": why, "envelope": H(blob), "pin_sealer": sealer, "expect": outcome})
    return {"envelope": H(raw), "edek": H(edek.to_bytes()), "data": H(data), "tampered": tampered}


def _records(body: bytes) -> tuple[list[bytes], bytes]:
    """A sealed stream's chunk records (each with its length) and its trailer."""
    out, pos = [], 0
    while len(body) - pos > 64:
        size = int.from_bytes(body[pos : pos + 4], "big")
        out.append(body[pos : pos + 4 + size])
        pos += 4 + size
    return out, body[pos:]


def _stream_cases(w: _World) -> dict[str, Any]:
    data = os.urandom(3500)
    sink = io.BytesIO()
    head = seal_stream(io.BytesIO(data), sink, b"rec-1", [w.group_pub], w.admin, chunk_size=1000)
    blob = sink.getvalue()
    edek = w.level(head.edeks[0], 2)
    source = w.decrypt(edek, w.admin, w.service)
    header_len = 4 + int.from_bytes(blob[:4], "big")
    prefix, (records, trailer) = blob[:header_len], _records(blob[header_len:])
    assert len(records) == 4
    variants = [
        ("truncated before the trailer", blob[:-64], "admin"),
        ("truncated trailer", blob[:-1], "admin"),
        ("extended", blob + b"\x00", "admin"),
        ("last chunk dropped", prefix + b"".join(records[:3]) + trailer, "admin"),
        (
            "chunks swapped",
            prefix + records[1] + records[0] + b"".join(records[2:]) + trailer,
            "admin",
        ),
        ("chunk repeated", prefix + records[0] + b"".join(records) + trailer, "admin"),
        ("chunk byte", _flip(blob, header_len + 4 + 10), "admin"),
        ("trailer", _flip(blob, len(blob) - 3), "admin"),
        ("header signature", _flip(blob, header_len - 1), "admin"),
        ("wrong sealer pinned", blob, "mallory"),
    ]
    signers = {"admin": w.admin, "mallory": w.mallory}
    tampered = []
    for why, bad, sealer in variants:

        def attempt(bad: bytes = bad, sealer: str = sealer) -> Any:
            src = io.BytesIO(bad)
            return open_stream(
                src, io.BytesIO(), read_header(src), source, sealer=signers[sealer].verifying_key
            )

        outcome = _outcome(attempt)
        assert outcome in ("malformed", "decryption"), why
        tampered.append({"why": why, "stream": H(bad), "pin_sealer": sealer, "expect": outcome})
    return {"stream": H(blob), "edek": H(edek.to_bytes()), "data": H(data), "tampered": tampered}


# --- SFrame ------------------------------------------------------------------------------


def _sframe_cases() -> list[dict[str, Any]]:
    out = []
    for suite in (1, 2, 3, 4, 5):
        sk, epoch, index = os.urandom(32), 7 + suite, 3 * suite
        sender = Sender(sk, epoch, index, suite=suite)
        frames = []
        for i in range(10):  # counters 0..9: short and extended headers
            metadata, plaintext = os.urandom(i % 3), os.urandom(20 + 7 * i)
            frames.append(
                {
                    "metadata": H(metadata),
                    "plaintext": H(plaintext),
                    "frame": H(sender.encrypt(metadata, plaintext)),
                }
            )
        later = Sender(sk, epoch + 1, index, suite=suite)  # the next epoch, same session key
        big_kid, big_ctr = (1 << 64) - 1, (1 << 64) - 2
        ctx = SFrameContext(suite)
        base = os.urandom(32)
        ctx.add_encrypt_key(big_kid, base)
        out.append(
            {
                "suite": suite,
                "session_key": H(sk),
                "epoch": epoch,
                "sender": index,
                "kid": str(kid_for(epoch, index)),
                "base_key": H(sender_base_key(sk, epoch, index, suite)),
                "frames": frames,
                "next_epoch_frame": H(later.encrypt(b"", b"after the rekey")),
                "context": {
                    "kid": str(big_kid),
                    "ctr": str(big_ctr),
                    "base_key": H(base),
                    "metadata": H(b"meta"),
                    "plaintext": H(b"a frame at the end of the counter space"),
                    "frame": H(
                        ctx.encrypt(
                            big_ctr, big_kid, b"meta", b"a frame at the end of the counter space"
                        )
                    ),
                },
            }
        )
    return out


# --- board messages, meeting helpers, requests ------------------------------------------------


def _exotic_wire(message: BoardMessage) -> str:
    """The same message as other JSON text: keys reversed, spaces, raw non-ASCII."""
    data = json.loads(message.to_json())
    return json.dumps(dict(reversed(list(data.items()))), ensure_ascii=False, indent=1)


def _message_cases() -> dict[str, Any]:
    key = SigningKey.generate()
    other = SigningKey.generate()
    bodies: list[dict[str, Any]] = [
        {},
        {
            "epoch": 3,
            "reason": "join",
            "ratchet": True,
            "roster": ["alice", "bob"],
            "prev": b64e(bytes(32)),
        },
        {
            "text": 'héllo ✓ 😀 \u2028 \x7f "q" \\ \n\t',
            "nested": [[1, [2.5, None]], {"z": 1, "a": False}],
        },
        {"floats": [0.1, 1e16, 1e-05, -0.0, 100.0, 1.5e300], "big": 2**70, "neg": -(2**63)},
        {"\U0001f600": 1, "\uffff": 2, "a": 3, "": 4},
    ]
    valid = []
    for i, body in enumerate(bodies):
        m = BoardMessage.create(
            key,
            meeting="m-1",
            kind="session-key" if i == 1 else "announce",
            user="alice",
            device="dev-a",
            seq=1000 + i,
            body=body,
        )
        for wire in (m.to_json(), _exotic_wire(m)):
            parsed = BoardMessage.from_json(wire)
            parsed.verify(key.verifying_key)
            valid.append(
                {
                    "wire": wire,
                    "canonical": m.to_json(),
                    "signed": parsed._signed().decode(),
                    "seq": m.seq,
                }
            )
    base = BoardMessage.create(
        key, meeting="m-1", kind="leave", user="alice", device="dev-a", seq=5, body={"x": 1}
    )
    fields = json.loads(base.to_json())

    def variant(**change: Any) -> str:
        d = dict(fields)
        for k, v in change.items():
            if v is _DROP:
                d.pop(k)
            else:
                d[k] = v
        return json.dumps(d)

    v_true = variant(v=True)  # Python's 1 == True: still version 1, same signature
    bad = [
        variant(body={"x": 2}),
        variant(seq=6),
        variant(kind="end"),
        variant(meeting="m-2"),
        variant(seq=5.0),
        variant(seq=-1),
        variant(seq=2**53),
        variant(seq=True),
        variant(v=2),
        variant(kind="nope"),
        variant(user="bad user"),
        variant(body=[1]),
        variant(sig="!!"),
        variant(sig=b64e(bytes(65))),
        variant(extra=1),
        variant(body=_DROP),
        "[]",
        "{",
        '{"v": 1, "v": 1}',
        "x" * (64 * 1024 + 1),
        "\ufeff" + base.to_json(),
        base.to_json() + " x",
    ]

    def check(wire: str) -> str:
        try:
            m = BoardMessage.from_json(wire)
        except MalformedInputError:
            return "malformed"
        try:
            m.verify(key.verifying_key)
        except SealroomError:
            return "signature"
        return "ok"

    tampered = [{"wire": wire, "expect": check(wire)} for wire in [v_true, *bad]]
    assert tampered[0]["expect"] == "ok"
    assert all(t["expect"] != "ok" for t in tampered[1:])
    return {
        "seed": H(key.expose_secret_bytes()),
        "verifying_key": H(key.verifying_key.to_bytes()),
        "other_key": H(other.verifying_key.to_bytes()),
        "valid": valid,
        "tampered": tampered,
        "to_create": {
            "meeting": "m-1",
            "kind": "session-key",
            "user": "alice",
            "device": "dev-a",
            "seq": 1001,
            "body": bodies[1],
            "wire": BoardMessage.create(
                key,
                meeting="m-1",
                kind="session-key",
                user="alice",
                device="dev-a",
                seq=1001,
                body=bodies[1],
            ).to_json(),
        },
    }


_DROP = object()


def _meeting_cases() -> dict[str, Any]:
    rosters, prev = [], bytes(32)
    for epoch, members in enumerate(
        [["alice"], ["alice", "bob"], ["alice", "bob", "carol@x", "é😀"]]
    ):
        head = _roster_hash(prev, epoch, members)
        rosters.append({"prev": H(prev), "epoch": epoch, "members": members, "head": H(head)})
        prev = head
    sk = os.urandom(32)
    group_key = generate_key_pair()[1].to_bytes()
    return {
        "rosters": rosters,
        "ratchets": [
            {"key": H(sk), "meeting": m, "epoch": e, "next": H(ratchet(sk, m, e))}
            for m, e in [("m-1", 1), ("meeting.x", 2**32 - 1), ("m", 0)]
        ],
        "security_codes": [
            {
                "group_key": H(group_key),
                "head": H(prev),
                "epoch": e,
                "code": security_code(group_key, prev, e),
            }
            for e in (0, 5, 2**40)
        ],
    }


def _request_cases() -> dict[str, Any]:
    key = SigningKey.generate()
    cases = []
    for method, path, query, body in [
        ("POST", "/v1/transform", "", b'{"edek": "AAA", "target": {"kind": "group", "id": "m1"}}'),
        ("GET", "/v1/devices/by-signing-key/abc", "", b""),
        ("GET", "/v1/audit", "after=5&limit=10", b""),
        ("delete", "/v1/groups/g%20x/members/u", "", b""),
    ]:
        nonce = os.urandom(16)
        headers = sign_request(
            key,
            "dev-1",
            method=method,
            path=path,
            query=query,
            body=body,
            now=1_700_000_000.75,
            nonce=nonce,
        )
        cases.append(
            {
                "method": method,
                "path": path,
                "query": query,
                "body": H(body),
                "now": 1_700_000_000.75,
                "nonce": H(nonce),
                "headers": headers,
            }
        )
    base = cases[0]
    tampered = [
        dict(base, path="/v1/transform/batch"),
        dict(base, query="x=1"),
        dict(base, body=H(b"{}")),
        dict(base, method="PUT"),
        dict(base, headers=dict(base["headers"], **{"sealroom-timestamp": "1700000001"})),
        dict(base, headers=dict(base["headers"], **{"sealroom-device": "dev-2"})),
    ]
    malformed = [
        dict(base["headers"], **{"sealroom-timestamp": "12a"}),
        dict(base["headers"], **{"sealroom-nonce": b64e(bytes(15))}),
        dict(base["headers"], **{"sealroom-signature": "***"}),
        dict(base["headers"], **{"sealroom-device": ""}),
    ]
    for h in malformed:
        assert _outcome(lambda h=h: parse_headers(h)) == "malformed"
    return {
        "seed": H(key.expose_secret_bytes()),
        "verifying_key": H(key.verifying_key.to_bytes()),
        "device": "dev-1",
        "valid": cases,
        "tampered": tampered,
        "malformed_headers": malformed,
    }


def _identity_cases(w: _World) -> dict[str, Any]:
    signing = os.urandom(32)
    message = device_certificate_message("dev-xyz", signing, w.device_pub.to_bytes())
    return {
        "user_private_key": H(w.user_priv.expose_secret_bytes()),
        "user_signing_key": H(w.user_signer.verifying_key.to_bytes()),
        "device_id": "dev-xyz",
        "signing_key": H(signing),
        "public_key": H(w.device_pub.to_bytes()),
        "certificate_message": H(message),
        "certificate": H(w.user_signer.sign(b"sealroom/v1/sig/device-certificate", message)),
    }


def _encoding_cases() -> dict[str, Any]:
    texts = ["", "AA", "AAE", "AAEC", "_-8", "A", "AB", "AAF", "AA==", "AA A", "é", "+/"]
    return {
        "cases": [
            {"text": t, "bytes": H(b64d(t)) if _outcome(lambda t=t: b64d(t)) == "ok" else None}
            for t in texts
        ]
    }


def _escrow_cases(w: _World) -> dict[str, Any]:
    """Blobs sealed by Python: the split-trust mode with the default Argon2id cost, a
    password with a light Argon2id cost and with PBKDF2; a wrong secret, a tampered blob
    and an unknown KDF, each with Python's verdict."""
    service, provider = os.urandom(16), os.urandom(16)
    split = combine_split_secret(service, provider)
    light = Argon2idParams(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    password = EscrowSecret.from_password("pässword")
    blobs = [
        ("split", seal_private_key(w.user_priv, split)),
        ("password", seal_private_key(w.user_priv, password, params=light)),
        ("pbkdf2", seal_private_key(w.user_priv, password, "pbkdf2")),
    ]
    password_blob = blobs[1][1]
    wrong = EscrowSecret.from_password("password")
    bad = [
        ("wrong", password_blob, "password"),
        ("tampered", _flip(password_blob, len(password_blob) - 1), "pässword"),
        ("kdf", password_blob[:2] + b"\x07" + password_blob[3:], "pässword"),
        ("short", password_blob[:-1], "pässword"),
    ]

    def verdict(blob: bytes, password: str) -> str:
        try:
            open_private_key(blob, EscrowSecret.from_password(password))
        except WrongSecretError:
            return "wrong_secret"
        except MalformedInputError:
            return "malformed"
        except DecryptionError:
            return "decryption"
        return "ok"

    assert verdict(password_blob, "password") == "wrong_secret"
    assert _outcome(lambda: open_private_key(password_blob, wrong)) != "ok"
    return {
        "service_half": H(service),
        "provider_half": H(provider),
        "split_secret": H(split.expose_secret_bytes()),
        "password": "pässword",
        "private_key": H(w.user_priv.expose_secret_bytes()),
        "blobs": {name: H(blob) for name, blob in blobs},
        "bad": [
            {"name": name, "blob": H(blob), "password": pw, "verdict": verdict(blob, pw)}
            for name, blob, pw in bad
        ],
    }


def write_cases(directory: Path) -> dict[str, Any]:
    """Write cases.json into ``directory``; returns the cases and the secrets Python keeps."""
    w = _World()
    cases = {
        "pairing": _pairing_cases(),
        "pre": _pre_cases(w),
        "envelope": _envelope_cases(w),
        "stream": _stream_cases(w),
        "sframe": _sframe_cases(),
        "messages": _message_cases(),
        "meeting": _meeting_cases(),
        "requests": _request_cases(),
        "identity": _identity_cases(w),
        "encoding": _encoding_cases(),
        "escrow": _escrow_cases(w),
    }
    (directory / "cases.json").write_text(json.dumps(cases))
    return {"cases": cases, "world": w}


def public_key(hex_text: str) -> PublicKey:
    return PublicKey.from_bytes(bytes.fromhex(hex_text))
