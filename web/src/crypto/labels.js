// Every hash, KDF and signature use has its own label: the same bytes as
// src/sealroom/crypto/labels.py.

import { utf8 } from '../bytes.js';

const PREFIX = 'sealroom/v1/';
const label = (s) => utf8(PREFIX + s);

export const HASH_TO_G2 = label('pre/hash-to-g2');
export const AUTH_HASH = label('pre/auth-hash');
export const DEK = label('pre/dek');
export const DERIVED_PRIVATE_KEY = label('pre/derived-private-key');

export const SIG_ORIGIN = label('sig/encrypted-value-origin');
export const SIG_TRANSFORMED = label('sig/encrypted-value-transformed');
export const SIG_TRANSFORM_KEY = label('sig/transform-key');
export const SIG_ENVELOPE = label('sig/envelope');
export const SIG_STREAM_HEADER = label('sig/stream-header');
export const SIG_STREAM_TRAILER = label('sig/stream-trailer');

export const ENVELOPE_AAD = label('envelope/aad');
export const USER_SIGNING_SEED = label('user/signing-key-seed');
export const ESCROW_AAD = label('escrow/aad');
export const ESCROW_KEY = label('escrow/key');
export const ESCROW_CHECK = label('escrow/check');
export const ESCROW_SPLIT = label('escrow/split-secret');
