// The key service client for a browser device (src/sealroom/sdk/client.py, the calls a
// meeting participant needs). It does all encrypting and decrypting itself; the service
// only transforms. Every request after registration is signed by the device
// (api/reqsig.js). The service's signing key and users' keys are pinned on first sight; a
// change throws KeyChangedError unless the application's onKeyChange accepts it.

import { b64d, b64e } from '../api/encoding.js';
import { DEVICE_CERT_LABEL, deviceCertificateMessage, userSigningKey } from '../api/identity.js';
import { signRequest } from '../api/reqsig.js';
import { equalBytes, fromUtf8, utf8 } from '../bytes.js';
import { Envelope, openEnvelope } from '../crypto/envelope.js';
import { combineSplitSecret, openPrivateKey } from '../crypto/escrow.js';
import { openStreamToBytes, readHeader } from '../crypto/stream.js';
import { EncryptedValue, PrivateKey, PublicKey, decrypt, generateKeyPair, generateTransformKey } from '../crypto/pre.js';
import { SigningKey, VerifyingKey } from '../crypto/signing.js';
import { SignatureError } from '../errors.js';
import { KeyChangedError, NetworkError, SdkError, ServiceRefusedError } from './errors.js';
import { Keystore } from './keystore.js';

export const KEYSERVICE_AUDIENCE = 'sealroom-keyservice';
const DOC_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
export const SIGNER_CACHE_SECONDS = 60;
export const APPROVAL_PREFIX = 'sealroom-approve:v1:';

function need(value) {
  if (value === null || value === undefined) throw new SdkError('not initialized');
  return value;
}

/** A document id from outside (an envelope's object id), checked before it goes into a URL. */
function docId(raw) {
  let text;
  try {
    text = fromUtf8(raw);
  } catch {
    throw new SdkError('the object id is not a valid document id');
  }
  if (!DOC_ID.test(text)) throw new SdkError('the object id is not a valid document id');
  return text;
}

function newDeviceId() {
  return `dev-${crypto.randomUUID().replace(/-/g, '')}`;
}

/** One device of one user, against one key service. */
export class KeyServiceClient {
  #signers = new Map(); // hex of a signing key -> [time, VerifyingKey]

  /**
   * @param baseUrl the key service, e.g. "https://keys.example.com" ('' for the page's origin)
   * @param jwt async (audience) => a fresh JWT for this user
   * @param keystore a Keystore (new and empty by default)
   * @param fetch the fetch to use; clock: () => seconds; onKeyChange(subject, old, new) => bool
   */
  constructor(baseUrl, { jwt = null, keystore = new Keystore(), fetch: fetchFn = null, clock = () => Date.now() / 1000, onKeyChange = null } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.ks = keystore;
    this.jwt = jwt;
    this.fetch = fetchFn ?? ((...args) => globalThis.fetch(...args));
    this.clock = clock;
    this.onKeyChange = onKeyChange;
  }

  // --- plumbing ---

  async call(method, path, body = null, { auth = 'device', query = '' } = {}) {
    const raw = body === null ? new Uint8Array(0) : utf8(JSON.stringify(body));
    const headers = raw.length ? { 'content-type': 'application/json' } : {};
    if (auth === 'jwt') {
      if (!this.jwt) throw new SdkError('no JWT provider');
      headers.authorization = `Bearer ${await this.jwt(KEYSERVICE_AUDIENCE)}`;
    } else if (auth === 'device') {
      if (!this.ks.signingKey || !this.ks.deviceId) throw new SdkError('this device is not registered yet');
      Object.assign(
        headers,
        await signRequest(this.ks.signingKey, this.ks.deviceId, { method, path, query, body: raw, now: this.clock() }),
      );
    }
    const url = this.baseUrl + path + (query ? `?${query}` : '');
    let response;
    let text;
    try {
      response = await this.fetch(url, { method, headers, body: raw.length ? raw : undefined });
      text = await response.text();
    } catch (exc) {
      throw new NetworkError(`the key service is unreachable (${exc.name})`);
    }
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = {};
    }
    if (response.status >= 400) {
      throw new ServiceRefusedError(String(data.code ?? 'unknown'), response.status, String(data.detail ?? ''));
    }
    return data;
  }

  /** True if `fresh` may be used: first sight, unchanged, or accepted by the application. */
  pin(subject, old, fresh) {
    if (old === null || old === undefined || equalBytes(old, fresh)) return true;
    if (this.onKeyChange && this.onKeyChange(subject, old, fresh)) return true;
    throw new KeyChangedError(subject);
  }

  get userId() {
    return need(this.ks.userId);
  }

  get deviceId() {
    return need(this.ks.deviceId);
  }

  async serviceKey() {
    return VerifyingKey.fromBytes(need(this.ks.serviceKey));
  }

  /** Fetch the service's signing key and pin it (first sight) or check it against the pin. */
  async pinService() {
    const info = await this.call('GET', '/v1/service', null, { auth: 'none' });
    const key = b64d(info.signing_key, 'signing_key');
    this.pin('the key service', this.ks.serviceKey, key);
    this.ks.serviceKey = key;
    return key;
  }

  // --- devices ---

  /** Fresh keys for this device (kept in the keystore; the private keys never leave it). */
  async newDeviceKeys() {
    const [deviceKey, devicePublic] = generateKeyPair();
    this.ks.deviceKey = deviceKey;
    this.ks.signingKey = await SigningKey.generate();
    this.ks.deviceId = newDeviceId();
    return { deviceId: this.ks.deviceId, publicKey: devicePublic, signingKey: this.ks.signingKey.verifyingKey.toBytes() };
  }

  /** The registration body: the user's certificate over the device's keys and the
   *  user→device transform key, both made with the user's private key. */
  static async registration(userKey, deviceId, name, signingKey, publicKey) {
    if (!(userKey instanceof PrivateKey) || !(publicKey instanceof PublicKey)) {
      throw new TypeError('registration(PrivateKey, id, name, signing key bytes, PublicKey)');
    }
    const userSigner = await userSigningKey(userKey);
    const certificate = await userSigner.sign(
      DEVICE_CERT_LABEL,
      deviceCertificateMessage(deviceId, signingKey, publicKey.toBytes()),
    );
    const tk = await generateTransformKey(userKey, publicKey, userSigner);
    return {
      device_id: deviceId,
      name,
      signing_key: b64e(signingKey),
      public_key: b64e(publicKey.toBytes()),
      certificate: b64e(certificate),
      transform_key: b64e(tk.key.toBytes()),
    };
  }

  /** Register this browser as a new device of the user whose private key the application
   *  holds (from its escrow): pins the service and the user, makes device keys, and posts
   *  the certificate and transform key with the user's JWT. */
  async registerWithUserKey(userKey) {
    await this.pinService();
    const me = await this.call('GET', '/v1/users/me', null, { auth: 'jwt' });
    const signer = await userSigningKey(userKey);
    if (!equalBytes(signer.verifyingKey.toBytes(), b64d(me.signing_key, 'signing_key'))) {
      throw new SdkError("the user key does not match the user's signing key");
    }
    this.ks.userId = me.id;
    this.remember(me.id, b64d(me.public_key, 'public_key'), signer.verifyingKey.toBytes());
    const { deviceId, publicKey, signingKey } = await this.newDeviceKeys();
    const body = await KeyServiceClient.registration(userKey, deviceId, this.ks.deviceName, signingKey, publicKey);
    await this.call('POST', '/v1/devices', body, { auth: 'jwt' });
    this.ks.registered = true;
    return deviceId;
  }

  /** Become a device of this user through the escrow: the user's private key is opened
   *  here, in the page, with `secret` (an EscrowSecret: use splitTrustSecret() for the
   *  basic mode, EscrowSecret.fromPassword() for a password), used to certify this
   *  device, and dropped. */
  async registerWithEscrow(secret) {
    const me = await this.call('GET', '/v1/users/me', null, { auth: 'jwt' });
    const userKey = await openPrivateKey(b64d(me.escrow_blob, 'escrow_blob', { maxBytes: 4096 }), secret);
    return this.registerWithUserKey(userKey);
  }

  /** The basic mode's escrow secret: the key service's half (with this user's JWT) and
   *  the provider's half (the application fetches it from its provider). */
  async splitTrustSecret(providerHalf) {
    const data = await this.call('POST', '/v1/users/me/escrow-half', null, { auth: 'jwt' });
    return combineSplitSecret(b64d(data.half, 'half', { maxBytes: 16 }), providerHalf);
  }

  /** Whether this device is registered at the key service yet (asked with the user's
   *  JWT: an unapproved device cannot sign requests). */
  async isRegistered() {
    try {
      await this.call('GET', `/v1/devices/${encodeURIComponent(this.deviceId)}`, null, { auth: 'jwt' });
      return true;
    } catch (exc) {
      if (exc instanceof ServiceRefusedError && exc.code === 'not_found') return false;
      throw exc;
    }
  }

  /** Public facts about a device (its keys and certificate), as the service lists them. */
  async deviceInfo(deviceId) {
    return this.call('GET', `/v1/devices/${encodeURIComponent(deviceId)}`);
  }

  /** This device's card for a meeting announce: its keys and certificate as listed. */
  async ownCard() {
    const info = await this.deviceInfo(this.deviceId);
    return { signing_key: String(info.signing_key), public_key: String(info.public_key), certificate: String(info.certificate) };
  }

  /** Forget this device's private keys (the meeting is over, or the page leaves). */
  forgetDevice() {
    this.ks.deviceKey = null;
    this.ks.signingKey = null;
    this.ks.registered = false;
  }

  /** On this new device: make keys and return the payload an existing device approves
   *  (shown as a QR code); the existing device then registers this one. */
  async requestApproval(userId) {
    const { deviceId, publicKey, signingKey } = await this.newDeviceKeys();
    this.ks.userId = userId;
    const payload = {
      device_id: deviceId,
      name: this.ks.deviceName,
      public_key: b64e(publicKey.toBytes()),
      signing_key: b64e(signingKey),
      user_id: userId,
    };
    return APPROVAL_PREFIX + b64e(utf8(JSON.stringify(payload)));
  }

  /** Once approved: pin the service and this user's keys. */
  async completeApproval() {
    this.ks.registered = true;
    await this.pinService();
    await this.userPublicKeys([this.userId]);
  }

  // --- users and signers ---

  remember(userId, publicKey, signingKey) {
    const old = this.ks.pinned.get(userId);
    this.pin(`user ${userId}`, old?.publicKey, publicKey);
    this.pin(`user ${userId}`, old?.signingKey, signingKey);
    this.ks.pinned.set(userId, { publicKey, signingKey });
  }

  /** The keys of those of `userIds` that exist, 1,000 per request, pinned on first sight
   *  and checked against the pins after: Map(user id -> {publicKey, signingKey} bytes). */
  async findUserKeys(userIds) {
    const wanted = [...new Set(userIds)].sort();
    const out = new Map();
    for (let i = 0; i < wanted.length; i += 1000) {
      const data = await this.call('POST', '/v1/users/keys', { user_ids: wanted.slice(i, i + 1000) });
      for (const [uid, keys] of Object.entries(data.keys ?? {})) {
        const publicKey = b64d(keys.public_key, 'key');
        const signingKey = b64d(keys.signing_key, 'key');
        this.remember(uid, publicKey, signingKey);
        out.set(uid, { publicKey, signingKey });
      }
    }
    return out;
  }

  /** Users' public keys, pinned on first sight and checked against the pins after. */
  async userPublicKeys(userIds) {
    const data = await this.call('POST', '/v1/users/keys', { user_ids: [...userIds] });
    const out = new Map();
    for (const [uid, keys] of Object.entries(data.keys ?? {})) {
      const pub = b64d(keys.public_key, 'key');
      this.remember(uid, pub, b64d(keys.signing_key, 'key'));
      out.set(uid, PublicKey.fromBytes(pub));
    }
    const missing = userIds.filter((u) => !out.has(u));
    if (missing.length) throw new SdkError(`no such user: ${[...missing].sort()[0]}`);
    return out;
  }

  /** A device's signing key, trusted only if its certificate chains to its user's pinned
   *  key and the device was not revoked as lost. */
  async certified(info) {
    if (info.revoke_reason === 'revoked') throw new SdkError('the signing device was revoked');
    await this.userPublicKeys([info.user_id]);
    const userKey = await VerifyingKey.fromBytes(this.ks.pinned.get(info.user_id).signingKey);
    const signer = b64d(info.signing_key, 'signing_key');
    const message = deviceCertificateMessage(info.id, signer, b64d(info.public_key, 'public_key'));
    try {
      await userKey.verify(DEVICE_CERT_LABEL, message, b64d(info.certificate, 'cert'));
    } catch (exc) {
      if (exc instanceof SignatureError) throw new SdkError('the device certificate does not verify');
      throw exc;
    }
    return VerifyingKey.fromBytes(signer);
  }

  /** The device that owns `signer` (bytes), checked as certified(). */
  async origin(signer) {
    const cacheKey = b64e(signer);
    const cached = this.#signers.get(cacheKey);
    if (cached && this.clock() - cached[0] < SIGNER_CACHE_SECONDS) return cached[1];
    const info = await this.call('GET', `/v1/devices/by-signing-key/${b64e(signer)}`);
    const key = await this.certified(info);
    if (!equalBytes(key.toBytes(), signer)) throw new SdkError('the service answered for another device');
    this.#signers.set(cacheKey, [this.clock(), key]);
    return key;
  }

  // --- transforms and opening ---

  /** Ask the service to transform an EDEK to this device (through a group or the user). */
  async transform(edek, target) {
    const data = await this.call('POST', '/v1/transform', { edek: b64e(edek), target });
    return b64d(data.edek, 'edek');
  }

  /** Decrypt an EDEK transformed to this device: origin certified, transformer pinned. */
  async unwrap(edek) {
    const value = EncryptedValue.fromBytes(edek);
    const origin = await this.origin(value.originSigner);
    return decrypt(value, need(this.ks.deviceKey), { originSigner: origin, transformer: await this.serviceKey() });
  }

  /** Open an envelope sealed to a group (a meeting's session-key post): its first EDEK is
   *  transformed group→user→device, and the envelope's sealer is checked on its own. */
  async openGroupEnvelope(envelope, groupId) {
    if (!(envelope instanceof Envelope)) throw new TypeError('openGroupEnvelope(Envelope, group id)');
    const edek = await this.transform(envelope.edeks[0].toBytes(), { kind: 'group', id: groupId });
    const source = await this.unwrap(edek);
    return openEnvelope(envelope, source, { sealer: await this.origin(envelope.signer) });
  }

  /** The DEK source of a managed document, through the grant that reaches this device. */
  async unwrapFor(documentId) {
    const data = await this.call('GET', `/v1/documents/${documentId}/key`);
    return this.unwrap(b64d(data.edek, 'edek'));
  }

  /** Open a managed document (chat, a file, a title): the sealer is checked through its
   *  device certificate, on its own, as the Python SDK checks it. */
  async decryptDocument(envelope) {
    const source = await this.unwrapFor(docId(envelope.objectId));
    return openEnvelope(envelope, source, { sealer: await this.origin(envelope.signer) });
  }

  /** Open a sealed stream (a ByteSource); the plaintext comes back only once the sealer's
   *  trailer signature verified. */
  async decryptStream(src) {
    const [head, raw] = await readHeader(src);
    const source = await this.unwrapFor(docId(head.objectId));
    const sealer = await this.origin(head.signer);
    return openStreamToBytes(src, [head, raw], source, { sealer });
  }

  /** A meeting's session key SK_epoch from a session-key post's envelope: 32 key bytes
   *  followed by the epoch as 8 big-endian bytes, which must match the post's epoch. */
  async openSessionKey(envelopeBytes, meetingId, epoch) {
    const data = await this.openGroupEnvelope(Envelope.fromBytes(envelopeBytes), meetingId);
    let got = 0n;
    for (const b of data.subarray(32)) got = (got << 8n) | BigInt(b);
    if (data.length !== 40 || got !== BigInt(epoch)) throw new SdkError('the envelope holds another epoch');
    return data.subarray(0, 32);
  }
}
