// SDK errors (src/sealroom/sdk/errors.py).

import { SealroomError } from '../errors.js';

/** Base of the SDK's own errors. */
export class SdkError extends SealroomError {}

/** The key service could not be reached (fetch failed: offline, refused, reset). */
export class NetworkError extends SdkError {}

/** The key service refused a call; `code` is its stable error code. */
export class ServiceRefusedError extends SdkError {
  constructor(code, status, detail) {
    super(`${code} (${status}): ${detail}`);
    Object.assign(this, { code, status, detail });
  }
}

/** A pinned key changed and the application did not accept the change. */
export class KeyChangedError extends SdkError {
  constructor(subject) {
    super(`the pinned key of ${subject} changed; verify it out of band`);
    this.subject = subject;
  }
}
