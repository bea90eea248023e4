// Sealroom's error tree, as in src/sealroom/errors.py:
//
//   SealroomError
//   ├── MalformedInputError    bytes that are not a valid encoding (version, length, tag,
//   │                          a point off the curve or outside the prime-order subgroup)
//   ├── DecryptionError        any failure to decrypt or authenticate; deliberately opaque
//   ├── SignatureError         a signature that does not verify against the pinned signer
//   ├── WrongSecretError       an escrow opened with the wrong password or secret
//   └── CryptoInvariantError   an internal check failed (a bug or a broken backend)
//
// No message ever contains key material, plaintext or a secret.

export class SealroomError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

export class MalformedInputError extends SealroomError {}

export class DecryptionError extends SealroomError {
  constructor() {
    super('decryption failed');
  }
}

export class SignatureError extends SealroomError {}

/** An escrow blob opened with the wrong password or secret. */
export class WrongSecretError extends SealroomError {}

export class CryptoInvariantError extends SealroomError {}
