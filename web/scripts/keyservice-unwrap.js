#!/usr/bin/env node
// Against a live key service: register this process as a new device of a user whose
// private key it is given, then have a meeting's session key transformed group → user →
// device and decrypt it. Prints {"device_id", "session_key"} as JSON; on a refusal, prints
// {"error": code} and exits 1. tests/web/test_web_live.py drives it.
//
//   node scripts/keyservice-unwrap.js < job.json
//   job: {"base_url", "jwt", "user_private_key" (hex), "meeting", "envelope" (base64url), "epoch"}
//   With "unchecked": true it posts the registration without first checking that the key
//   belongs to the JWT's user (to see the service refuse it). With "document" (an envelope,
//   base64url) and "stream" (a sealed stream, base64url), it also opens those managed
//   documents and prints their contents (hex) as "document" and "stream".

import { readFileSync } from 'node:fs';

import { b64d } from '../src/api/encoding.js';
import { fromHex, toHex } from '../src/bytes.js';
import { Envelope } from '../src/crypto/envelope.js';
import { ByteSource } from '../src/crypto/stream.js';
import { PrivateKey } from '../src/crypto/pre.js';
import { KeyServiceClient } from '../src/sdk/client.js';
import { SdkError, ServiceRefusedError } from '../src/sdk/errors.js';

const job = JSON.parse(readFileSync(0, 'utf8'));
const client = new KeyServiceClient(job.base_url, { jwt: async () => job.jwt });
const userKey = PrivateKey.fromSecretBytes(fromHex(job.user_private_key));

async function registerUnchecked() {
  await client.pinService();
  const { deviceId, publicKey, signingKey } = await client.newDeviceKeys();
  const body = await KeyServiceClient.registration(userKey, deviceId, 'node', signingKey, publicKey);
  await client.call('POST', '/v1/devices', body, { auth: 'jwt' });
  return deviceId;
}

try {
  const deviceId = job.unchecked ? await registerUnchecked() : await client.registerWithUserKey(userKey);
  const sessionKey = await client.openSessionKey(b64d(job.envelope, 'envelope'), job.meeting, job.epoch);
  const out = { device_id: deviceId, session_key: toHex(sessionKey) };
  if (job.document) out.document = toHex(await client.decryptDocument(Envelope.fromBytes(b64d(job.document, 'document'))));
  if (job.stream) out.stream = toHex(await client.decryptStream(new ByteSource(b64d(job.stream, 'stream', { maxBytes: 1 << 24 }))));
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (exc) {
  if (!(exc instanceof SdkError)) throw exc;
  const refused = exc instanceof ServiceRefusedError;
  process.stdout.write(JSON.stringify({ error: refused ? exc.code : 'client_refused', detail: exc.message }) + '\n');
  process.exitCode = 1;
}
