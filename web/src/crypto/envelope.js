// Envelope encryption (src/sealroom/crypto/envelope.py): data sealed under a fresh
// AES-256-GCM DEK, the DEK's source PRE-encrypted once to each recipient (the EDEKs).
//
// Wire format v1: version, tag 0x41, object id (u16 length + bytes), nonce (12), ciphertext
// (u32 length + bytes, tag included), EDEK count (u16), each EDEK as u32 length + an
// EncryptedValue, then the sealer's Ed25519 key (32) and its signature (64) over everything
// before it. The AAD binds the label, the version and the object id.

import { concat, isBytes, randomBytes } from '../bytes.js';
import { DecryptionError, MalformedInputError, SignatureError } from '../errors.js';
import * as labels from './labels.js';
import {
  EncryptedValue,
  Plaintext,
  PublicKey,
  decrypt,
  deriveSymmetricKey,
  encrypt,
  generatePlaintext,
} from './pre.js';
import { SIGNATURE_BYTES, VERIFYING_KEY_BYTES, verifyPinned } from './signing.js';
import { Reader, TAG_ENVELOPE, WIRE_VERSION, header, u16, u32 } from './wire.js';

export const NONCE_BYTES = 12;
export const MAX_OBJECT_ID_BYTES = 1024;
export const MAX_RECIPIENTS = 4096;

/** u16 count, then each EDEK as u32 length + encrypted value. */
export function encodeEdeks(edeks) {
  const parts = [u16(edeks.length)];
  for (const edek of edeks) {
    const raw = edek.toBytes();
    parts.push(u32(raw.length), raw);
  }
  return concat(...parts);
}

/** The inverse of encodeEdeks: 1 to MAX_RECIPIENTS EDEKs. */
export function readEdeks(r, what) {
  const count = r.u16();
  if (count < 1 || count > MAX_RECIPIENTS) {
    throw new MalformedInputError(`${what}: ${count} EDEKs is out of range`);
  }
  const out = [];
  for (let i = 0; i < count; i++) out.push(EncryptedValue.fromBytes(r.take(r.u32())));
  return out;
}

function aad(objectId) {
  return concat(labels.ENVELOPE_AAD, Uint8Array.of(WIRE_VERSION), u16(objectId.length), objectId);
}

/** AES-256-GCM with a raw 32-byte key (a SymmetricKey's bytes). */
export async function aesGcm(op, key, nonce, data, additionalData) {
  const k = await crypto.subtle.importKey('raw', key.exposeSecretBytes(), 'AES-GCM', false, [op]);
  const out = await crypto.subtle[op]({ name: 'AES-GCM', iv: nonce, additionalData, tagLength: 128 }, k, data);
  return new Uint8Array(out);
}

/** Sealed data plus one EDEK per recipient, signed by the sealer. */
export class Envelope {
  constructor({ objectId, nonce, ciphertext, edeks, signer = new Uint8Array(0), signature = new Uint8Array(0) }) {
    Object.assign(this, { objectId, nonce, ciphertext, edeks: Object.freeze([...edeks]), signer, signature });
    Object.freeze(this);
  }

  /** Everything the signature covers: all fields before it, the signer included. */
  signedPart() {
    return concat(
      header(TAG_ENVELOPE),
      u16(this.objectId.length),
      this.objectId,
      this.nonce,
      u32(this.ciphertext.length),
      this.ciphertext,
      encodeEdeks(this.edeks),
      this.signer,
    );
  }

  toBytes() {
    return concat(this.signedPart(), this.signature);
  }

  static fromBytes(data) {
    const r = new Reader(data, 'envelope');
    r.expectHeader(TAG_ENVELOPE);
    const idLength = r.u16();
    if (idLength > MAX_OBJECT_ID_BYTES) {
      throw new MalformedInputError(`envelope: object id of ${idLength} bytes is too long`);
    }
    const objectId = r.take(idLength);
    const nonce = r.take(NONCE_BYTES);
    const ciphertext = r.take(r.u32());
    if (ciphertext.length < 16) throw new MalformedInputError('envelope: ciphertext shorter than its tag');
    const edeks = readEdeks(r, 'envelope');
    const signer = r.take(VERIFYING_KEY_BYTES);
    const signature = r.take(SIGNATURE_BYTES);
    r.finish();
    return new Envelope({ objectId, nonce, ciphertext, edeks, signer, signature });
  }
}

/** Encrypt `data` under a fresh DEK and wrap the DEK's source to every recipient. */
export async function seal(data, objectId, recipients, signer) {
  if (!isBytes(data) || !isBytes(objectId)) throw new TypeError('seal(bytes, bytes, recipients, signer)');
  if (!recipients.length) throw new RangeError('an envelope needs at least one recipient');
  if (recipients.length > MAX_RECIPIENTS) {
    throw new RangeError(`an envelope takes at most ${MAX_RECIPIENTS} recipients`);
  }
  if (objectId.length > MAX_OBJECT_ID_BYTES) {
    throw new RangeError(`object id is longer than ${MAX_OBJECT_ID_BYTES} bytes`);
  }
  if (!recipients.every((r) => r instanceof PublicKey)) throw new TypeError('recipients are PublicKeys');
  const source = generatePlaintext();
  const dek = await deriveSymmetricKey(source);
  const nonce = randomBytes(NONCE_BYTES);
  const ciphertext = await aesGcm('encrypt', dek, nonce, data, aad(objectId));
  const edeks = [];
  for (const recipient of recipients) edeks.push(await encrypt(source, recipient, signer));
  const fields = { objectId: new Uint8Array(objectId), nonce, ciphertext, edeks, signer: signer.verifyingKey.toBytes() };
  const signature = await signer.sign(labels.SIG_ENVELOPE, new Envelope(fields).signedPart());
  return new Envelope({ ...fields, signature });
}

/** Check the pinned sealer's signature, then decrypt with the unwrapped `source`. */
export async function openEnvelope(envelope, source, { sealer }) {
  if (!(envelope instanceof Envelope) || !(source instanceof Plaintext)) {
    throw new TypeError('openEnvelope(Envelope, Plaintext, {sealer})');
  }
  try {
    await verifyPinned(sealer, envelope.signer, labels.SIG_ENVELOPE, envelope.signedPart(), envelope.signature);
  } catch (exc) {
    if (exc instanceof SignatureError) throw new DecryptionError();
    throw exc;
  }
  const dek = await deriveSymmetricKey(source);
  try {
    return await aesGcm('decrypt', dek, envelope.nonce, envelope.ciphertext, aad(envelope.objectId));
  } catch {
    throw new DecryptionError();
  }
}

/** Unwrap `edek` (one of the envelope's, possibly transformed) and decrypt the data. The
 *  EDEK's origin and the envelope must both be signed by `originSigner`. */
export async function openWithKey(envelope, edek, privateKey, { originSigner, transformer = null }) {
  const source = await decrypt(edek, privateKey, { originSigner, transformer });
  return openEnvelope(envelope, source, { sealer: originSigner });
}
