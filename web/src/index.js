// Sealroom's web client core: one import for everything (each module can also be loaded
// on its own). The layout mirrors the Python package file for file; see docs/web.md.

export * as bytes from './bytes.js';
export * as errors from './errors.js';
export * as json from './json.js';
export * as labels from './crypto/labels.js';
export * as wire from './crypto/wire.js';
export * as pairing from './crypto/pairing.js';
export * as signing from './crypto/signing.js';
export * as pre from './crypto/pre.js';
export * as envelope from './crypto/envelope.js';
export * as stream from './crypto/stream.js';
export * as sframe from './media/sframe.js';
export * as mediaKeys from './media/keys.js';
export * as payload from './media/payload.js';
export * as messages from './meeting/messages.js';
export * as roster from './meeting/roster.js';
export * as session from './meeting/session.js';
export * as channel from './meeting/channel.js';
export * as meetingClient from './meeting/client.js';
export * as escrow from './crypto/escrow.js';
export * as encoding from './api/encoding.js';
export * as reqsig from './api/reqsig.js';
export * as identity from './api/identity.js';
export * as client from './sdk/client.js';
export * as keystore from './sdk/keystore.js';
export * as sdkErrors from './sdk/errors.js';

export const VERSION = '0.1.0';
