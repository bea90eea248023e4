// RFC 9605 Appendix C test vectors in node: header encoding (C.1), the AES-CTR+HMAC AEAD
// (C.2) and SFrame encryption for all five suites (C.3). The file is the repository's cited
// copy, tests/vectors/rfc9605/ (see its README), checked against the SHA-256 beside it.
// Its 64-bit KIDs and CTRs are read as BigInt: JSON.parse would round them.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { fromHex, toHex } from '../src/bytes.js';
import { parse } from '../src/json.js';
import {
  SFrameContext,
  SFrameError,
  SFrameKey,
  aeadDecrypt,
  aeadEncrypt,
  decodeHeader,
  encodeHeader,
  hkdfExtract,
  suite,
} from '../src/media/sframe.js';

const DIR = new URL('../../tests/vectors/rfc9605/', import.meta.url);
const raw = readFileSync(new URL('test-vectors.json', DIR));
const V = parse(raw.toString('utf8'), { bigints: true });
const H = fromHex;

test('the vectors file is the cited copy', () => {
  const expected = readFileSync(new URL('test-vectors.json.sha256', DIR), 'utf8').split(/\s+/)[0];
  assert.equal(createHash('sha256').update(raw).digest('hex'), expected);
  assert.equal(V.header.length, 289);
  assert.ok(V.header.some((v) => v.kid === 0xffffffffffffffffn)); // exact, not rounded
});

test('C.1 header encoding and decoding (289 cases)', () => {
  for (const v of V.header) {
    const encoded = H(v.encoded);
    assert.equal(toHex(encodeHeader(v.kid, v.ctr)), v.encoded);
    const payload = Uint8Array.of(1, 2, 3);
    const got = decodeHeader(new Uint8Array([...encoded, ...payload]));
    assert.deepEqual([got.kid, got.ctr, got.length], [v.kid, v.ctr, encoded.length]);
  }
});

test('C.2 AES-CTR with HMAC, suites 1-3', async () => {
  for (const v of V.aes_ctr_hmac) {
    const s = Number(v.cipher_suite);
    assert.equal(v.key, v.enc_key + v.auth_key);
    const key = await SFrameKey.fromAeadKey(s, H(v.key));
    const ct = await aeadEncrypt(key, H(v.nonce), H(v.aad), H(v.pt));
    assert.equal(toHex(ct), v.ct);
    assert.equal(toHex(await aeadDecrypt(key, H(v.nonce), H(v.aad), ct)), v.pt);
    await assert.rejects(aeadDecrypt(key, H(v.nonce), new Uint8Array([...H(v.aad), 0x78]), ct), SFrameError);
  }
});

test('C.3 SFrame encryption and decryption, suites 1-5', async () => {
  assert.equal(V.sframe.length, 5);
  for (const v of V.sframe) {
    const s = Number(v.cipher_suite);
    assert.equal(toHex(await hkdfExtract(suite(s).hash, new Uint8Array(0), H(v.base_key))), v.sframe_secret);
    const key = await SFrameKey.derive(s, v.kid, H(v.base_key));
    assert.equal(toHex(key.nonce(0n)), v.sframe_salt);
    assert.equal(toHex(key.nonce(v.ctr)), v.nonce);
    const ctx = new SFrameContext(s);
    await ctx.addEncryptKey(v.kid, H(v.base_key));
    await ctx.addDecryptKey(v.kid, H(v.base_key));
    assert.equal(toHex(await ctx.encrypt(v.ctr, v.kid, H(v.metadata), H(v.pt))), v.ct);
    assert.equal(toHex(await ctx.decrypt(H(v.metadata), H(v.ct))), v.pt);
    const ct = H(v.ct);
    const flipped = new Uint8Array(ct);
    flipped[flipped.length - 1] ^= 1;
    await assert.rejects(ctx.decrypt(H(v.metadata), flipped), SFrameError);
    await assert.rejects(ctx.decrypt(H(v.metadata), ct.subarray(0, 6)), SFrameError);
    await assert.rejects(ctx.decrypt(new Uint8Array([...H(v.metadata), 0x21]), ct), SFrameError);
  }
});
