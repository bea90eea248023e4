// Behaviour of the web core that needs no Python: the GT membership arithmetic, Python-
// exact JSON, SFrame headers and senders, the replay window, secrets that stay redacted.

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { test } from 'node:test';

import { utf8 } from '../src/bytes.js';
import { G1, G2, GT, P, R, Scalar, U_ABS, outsideSubgroupEncodings } from '../src/crypto/pairing.js';
import { generateKeyPair, generatePlaintext } from '../src/crypto/pre.js';
import { SigningKey } from '../src/crypto/signing.js';
import { MalformedInputError } from '../src/errors.js';
import { PyFloat, dumps, parse, pyFloatRepr } from '../src/json.js';
import { CounterExhaustedError, FrameRejectedError, Receiver, ReplayWindow, Sender } from '../src/media/keys.js';
import { SFrameError, decodeHeader, encodeHeader } from '../src/media/sframe.js';
import { BoardMessage, SeqTracker } from '../src/meeting/messages.js';

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

test('the GT test is exact: gcd(p^6 + 1, p - u) = r', () => {
  const u = -U_ABS;
  assert.equal(gcd(P ** 6n + 1n, P - u), R);
  assert.equal((P - u) % R, 0n);
});

test('points outside the subgroups are refused by the decoders', () => {
  const [g1, g2] = outsideSubgroupEncodings();
  assert.throws(() => G1.fromBytes(g1), MalformedInputError);
  assert.throws(() => G2.fromBytes(g2), MalformedInputError);
});

test('scalars: range checks and blinded multiplication agree with the plain one', () => {
  assert.throws(() => Scalar.fromBytes(new Uint8Array(32).fill(0xff)), MalformedInputError);
  const k = Scalar.random();
  assert.ok(G1.generator().mulSecret(k).equals(G1.generator().mulPublic(k)));
  assert.ok(GT.generator().powSecret(k).equals(GT.generator().powPublic(k)));
  assert.ok(k.mul(k.inverse()).equals(Scalar.fromInt(1)));
});

test('secrets stay redacted when printed or serialized', async () => {
  const [priv] = generateKeyPair();
  const pt = generatePlaintext();
  const sk = await SigningKey.generate();
  for (const s of [priv, pt, sk, Scalar.random()]) {
    assert.match(String(s), /redacted/);
    assert.match(inspect(s), /redacted/);
    assert.throws(() => JSON.stringify(s), TypeError);
  }
});

test('JSON reads and writes as Python does', () => {
  assert.equal(dumps(parse('{"b": 1.0, "a": [1e16, 0.00001, -0.0, 18446744073709551615]}')), '{"a":[1e+16,1e-05,-0.0,18446744073709551615],"b":1.0}');
  assert.equal(dumps({ z: 'é😀\u2028\x7f', '\uffff': 1, '😀': 2 }), '{"z":"\\u00e9\\ud83d\\ude00\\u2028\\u007f","\\uffff":1,"\\ud83d\\ude00":2}');
  assert.equal(dumps(parse('[NaN, Infinity, -Infinity]')), '[NaN,Infinity,-Infinity]');
  assert.equal(parse('12345678901234567890').toString(), '12345678901234567890');
  assert.equal(typeof parse('7', { bigints: true }), 'bigint');
  assert.ok(parse('1.5') instanceof PyFloat);
  for (const bad of ['{', '[1,]', '"\u0001"', '01', '1.', '"\\x"', '{"a" 1}', '[] x']) assert.throws(() => parse(bad));
  assert.equal(pyFloatRepr(123456789012345680000), '1.2345678901234568e+20');
});

test('SFrame headers are minimal; non-minimal and truncated ones are refused', () => {
  assert.equal(encodeHeader(0n, 0n).length, 1);
  assert.throws(() => encodeHeader(1n << 64n, 0n), SFrameError);
  assert.throws(() => encodeHeader(1, 0n), SFrameError); // a number, not a BigInt
  for (const bad of [[0x88, 0x05], [0x80, 0x00], [0x89, 0x01], [0x90]]) {
    assert.throws(() => decodeHeader(Uint8Array.from(bad)), SFrameError);
  }
});

test('a sender stops at its limit; a receiver refuses strangers and too-old counters', async () => {
  const sk = new Uint8Array(32).fill(7);
  const tx = await Sender.create(sk, 1, 2, { maxFrames: 3 });
  const frames = [];
  for (let i = 0; i < 3; i++) frames.push(await tx.encrypt(new Uint8Array(0), utf8(`f${i}`)));
  await assert.rejects(tx.encrypt(new Uint8Array(0), utf8('x')), CounterExhaustedError);
  const rx = new Receiver({ window: 2 });
  rx.install(1, sk, 0, 2); // sender indices 0 and 1 only
  await assert.rejects(rx.decrypt(new Uint8Array(0), frames[0], 0), FrameRejectedError);
  const rx2 = new Receiver({ window: 2 });
  rx2.install(1, sk, 0);
  assert.ok(await rx2.decrypt(new Uint8Array(0), frames[2], 0));
  await assert.rejects(rx2.decrypt(new Uint8Array(0), frames[0], 0), FrameRejectedError); // too old
  assert.ok(await rx2.decrypt(new Uint8Array(0), frames[1], 0));
  rx2.retire(1);
  await assert.rejects(rx2.decrypt(new Uint8Array(0), frames[1], 0), FrameRejectedError);
});

test('the replay window accepts each counter once', () => {
  const w = new ReplayWindow(8);
  for (const c of [5n, 3n, 9n, 20n]) {
    assert.ok(w.check(c));
    w.accept(c);
    assert.ok(!w.check(c));
  }
  assert.ok(!w.check(12n)); // 20 - 12 = 8: outside the window
  assert.ok(w.check(13n));
});

test('board messages: per-device sequence numbers drop duplicates and replays', async () => {
  const key = await SigningKey.generate();
  const make = (seq, device = 'd1') =>
    BoardMessage.create(key, { meeting: 'm', kind: 'announce', user: 'u', device, seq, body: {} });
  const seen = new SeqTracker();
  assert.ok(seen.accept(await make(5)));
  assert.ok(!seen.accept(await make(5)));
  assert.ok(!seen.accept(await make(4)));
  assert.ok(seen.accept(await make(6)));
  assert.ok(seen.accept(await make(1, 'd2')));
  assert.ok(!seen.accept(await make(0, 'd3')));
});

test('only pairing.js loads mcl-wasm, and nothing uses its hash-to-curve', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const root = new URL('../src/', import.meta.url);
  const files = readdirSync(root, { recursive: true }).filter((f) => f.endsWith('.js'));
  const loaders = files.filter((f) => readFileSync(new URL(f, root), 'utf8').includes('mcl-wasm')).sort();
  assert.deepEqual(loaders, ['crypto/pairing.js']);
  for (const f of files) {
    const text = readFileSync(new URL(f, root), 'utf8').replace(/^\s*\/\/.*$/gm, '');
    assert.ok(!/hashAndMapTo|setHashOf|hashToFr|setByCSPRNG/.test(text), f);
  }
});

test('a stream source hands out exact pieces of one large buffer', async () => {
  // (Copying the remainder on every read, as an earlier version did, took minutes here.)
  const { ByteSource } = await import('../src/crypto/stream.js');
  const src = new ByteSource(new Uint8Array(64 << 20).fill(7));
  let total = 0;
  for (;;) {
    const piece = await src.read(64 * 1024);
    total += piece.length;
    if (piece.length < 64 * 1024) break;
  }
  assert.equal(total, 64 << 20);
  assert.equal((await src.read(1)).length, 0);
});

test('the backend never sees a secret scalar: fresh blinds every time', async () => {
  const { backendCalls } = await import('../src/crypto/pairing.js');
  const { toHex } = await import('../src/bytes.js');
  const seen = [];
  const real = { ...backendCalls };
  backendCalls.mul = (x, k) => {
    seen.push(toHex(k.serialize()));
    return real.mul(x, k);
  };
  backendCalls.pow = (x, k) => {
    seen.push(toHex(k.serialize()));
    return real.pow(x, k);
  };
  try {
    const k = Scalar.random();
    for (let i = 0; i < 2; i++) {
      G1.generator().mulSecret(k);
      G2.generator().mulSecret(k);
      GT.generator().powSecret(k);
    }
    assert.equal(seen.length, 12); // two backend calls per secret operation
    assert.ok(!seen.includes(toHex(k.exposeBytes())));
    assert.equal(new Set(seen).size, 12);
    G1.generator().mulPublic(k);
    assert.equal(seen.at(-1), toHex(k.exposeBytes())); // the public path passes it as it is
  } finally {
    Object.assign(backendCalls, real);
  }
});
