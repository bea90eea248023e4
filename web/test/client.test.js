// The key service client against a fake service (a fetch that answers like the key service):
// requests signed as reqsig.py signs them, keys pinned on first sight, a changed key
// refused unless the application accepts it, signers trusted only through a certificate.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { b64d, b64e } from '../src/api/encoding.js';
import { DEVICE_CERT_LABEL, deviceCertificateMessage, userSigningKey } from '../src/api/identity.js';
import { parseHeaders } from '../src/api/reqsig.js';
import { fromUtf8 } from '../src/bytes.js';
import { generateKeyPair } from '../src/crypto/pre.js';
import { SigningKey } from '../src/crypto/signing.js';
import { KeyServiceClient } from '../src/sdk/client.js';
import { KeyChangedError, SdkError, ServiceRefusedError } from '../src/sdk/errors.js';

/** A fake key service: routes answer JSON; every device-signed request is verified. */
async function fakeService() {
  const service = await SigningKey.generate();
  const [userKey, userPublic] = generateKeyPair();
  const userSigner = await userSigningKey(userKey);
  const [, devicePublic] = generateKeyPair();
  const deviceSigner = await SigningKey.generate();
  const cert = await userSigner.sign(
    DEVICE_CERT_LABEL,
    deviceCertificateMessage('dev-a', deviceSigner.verifyingKey.toBytes(), devicePublic.toBytes()),
  );
  const state = {
    serviceKey: service.verifyingKey.toBytes(),
    userPublic: userPublic.toBytes(),
    userSigning: userSigner.verifyingKey.toBytes(),
    device: {
      id: 'dev-a',
      user_id: 'alice',
      signing_key: b64e(deviceSigner.verifyingKey.toBytes()),
      public_key: b64e(devicePublic.toBytes()),
      certificate: b64e(cert),
      revoke_reason: null,
    },
    signedRequests: 0,
    clientKey: null,
  };
  const fetch = async (url, init) => {
    const { pathname, search } = new URL(url);
    const headers = init.headers ?? {};
    const signed = parseHeaders(headers);
    if (signed !== null) {
      await signed.verify(state.clientKey, init.method, pathname, search.slice(1), init.body ?? new Uint8Array(0));
      state.signedRequests += 1;
    }
    const answer = (status, body) => new Response(JSON.stringify(body), { status });
    if (pathname === '/v1/service') return answer(200, { signing_key: b64e(state.serviceKey) });
    if (pathname === '/v1/users/keys') {
      const ids = JSON.parse(fromUtf8(init.body)).user_ids;
      const keys = Object.fromEntries(
        ids.filter((u) => u === 'alice').map((u) => [u, { public_key: b64e(state.userPublic), signing_key: b64e(state.userSigning) }]),
      );
      return answer(200, { keys });
    }
    if (pathname.startsWith('/v1/devices/by-signing-key/')) return answer(200, state.device);
    return answer(404, { code: 'not_found', detail: 'no such route' });
  };
  return { state, fetch, deviceSigner };
}

async function registeredClient(fake, options = {}) {
  const client = new KeyServiceClient('http://keys.test', { fetch: fake.fetch, ...options });
  await client.newDeviceKeys();
  fake.state.clientKey = client.ks.signingKey.verifyingKey;
  return client;
}

test('requests are device-signed and keys pinned on first sight', async () => {
  const fake = await fakeService();
  const client = await registeredClient(fake);
  await client.pinService();
  const keys = await client.userPublicKeys(['alice']);
  assert.ok(keys.get('alice'));
  assert.equal(fake.state.signedRequests, 1);
  await assert.rejects(client.userPublicKeys(['alice', 'nobody']), SdkError);
  await assert.rejects(client.call('GET', '/v1/nothing'), (e) => e instanceof ServiceRefusedError && e.code === 'not_found');
});

test('a changed service or user key is refused unless the application accepts it', async () => {
  const fake = await fakeService();
  const client = await registeredClient(fake);
  await client.pinService();
  await client.userPublicKeys(['alice']);
  const [, other] = generateKeyPair();
  fake.state.userPublic = other.toBytes();
  await assert.rejects(client.userPublicKeys(['alice']), KeyChangedError);
  fake.state.serviceKey = (await SigningKey.generate()).verifyingKey.toBytes();
  await assert.rejects(client.pinService(), KeyChangedError);
  const seen = [];
  const lenient = await registeredClient(fake, {
    onKeyChange: (subject) => {
      seen.push(subject);
      return true;
    },
  });
  lenient.ks.pinned.set('alice', { publicKey: new Uint8Array(49), signingKey: fake.state.userSigning });
  await lenient.userPublicKeys(['alice']);
  assert.deepEqual(seen, ['user alice']);
});

test('a signer counts only through a certificate from its pinned user', async () => {
  const fake = await fakeService();
  const client = await registeredClient(fake);
  const signer = fake.deviceSigner.verifyingKey.toBytes();
  assert.ok((await client.origin(signer)).equals(fake.deviceSigner.verifyingKey));
  const genuine = fake.state.device;
  const forged = await registeredClient(fake);
  fake.state.device = { ...fake.state.device, certificate: b64e(new Uint8Array(64)) };
  await assert.rejects(forged.origin(signer), SdkError);
  const revoked = await registeredClient(fake);
  fake.state.device = { ...fake.state.device, revoke_reason: 'revoked' };
  await assert.rejects(revoked.origin(signer), SdkError);
  fake.state.device = genuine;
  const liar = await registeredClient(fake);
  await assert.rejects(liar.origin(new Uint8Array(32).fill(9)), /answered for another device/);
});

test('an approval payload carries only public keys', async () => {
  const fake = await fakeService();
  const client = new KeyServiceClient('http://keys.test', { fetch: fake.fetch });
  const payload = await client.requestApproval('alice');
  assert.ok(payload.startsWith('sealroom-approve:v1:'));
  const data = JSON.parse(fromUtf8(b64d(payload.slice('sealroom-approve:v1:'.length))));
  assert.deepEqual(Object.keys(data).sort(), ['device_id', 'name', 'public_key', 'signing_key', 'user_id']);
  assert.throws(() => JSON.stringify(client.ks.deviceKey), TypeError);
});
