// A base for secret values (src/sealroom/crypto/secret.py): redacted when printed,
// inspected or turned into JSON; the bytes come back only through exposeSecretBytes().

import { equalBytes } from '../bytes.js';

const inspect = Symbol.for('nodejs.util.inspect.custom');

export class Secret {
  #secret;

  constructor(secret) {
    this.#secret = new Uint8Array(secret);
  }

  /** The raw secret. Callers take responsibility for where it goes. */
  exposeSecretBytes() {
    return new Uint8Array(this.#secret);
  }

  /** Constant-time equality with another secret of the same class. */
  equals(other) {
    return (
      other instanceof Secret &&
      other.constructor === this.constructor &&
      equalBytes(this.#secret, other.#secret)
    );
  }

  get length() {
    return this.#secret.length;
  }

  toString() {
    return `<${this.constructor.name} [redacted]>`;
  }

  toJSON() {
    throw new TypeError(`${this.constructor.name} is not serialized to JSON`);
  }

  [inspect]() {
    return this.toString();
  }
}
