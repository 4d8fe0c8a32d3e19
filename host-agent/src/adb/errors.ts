// Typed errors of the agent's ADB layer; the command executor maps each class to one CommandCode.

export class AdbError extends Error {
  override readonly name: string = 'AdbError';
}

/** adbd could not be reached, refused the agent's key, or the connection dropped mid-operation. */
export class AdbUnavailableError extends AdbError {
  override readonly name = 'AdbUnavailableError';
  constructor(
    readonly endpoint: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`adb at ${endpoint}: ${detail}`, options);
  }
}

/** An argument the device would misread or refuse (a path, a key code, text too long ...). */
export class AdbInvalidArgumentError extends AdbError {
  override readonly name = 'AdbInvalidArgumentError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field}=${JSON.stringify(value)}: ${reason}`);
  }
}

/** `pm install` ran and answered `Failure [REASON: detail]` (or something unparseable). */
export class AdbInstallError extends AdbError {
  override readonly name = 'AdbInstallError';
  constructor(
    /** e.g. INSTALL_FAILED_INVALID_APK, INSTALL_PARSE_FAILED_NO_CERTIFICATES. */
    readonly failureReason: string,
    readonly detail: string,
  ) {
    super(detail ? `${failureReason}: ${detail}` : failureReason);
  }
}

/** A file operation on the device failed (no such file, not a regular file, permission). */
export class AdbFileError extends AdbError {
  override readonly name = 'AdbFileError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** A size limit was hit (a pulled file larger than allowed). */
export class AdbSizeLimitError extends AdbError {
  override readonly name = 'AdbSizeLimitError';
  constructor(
    readonly what: string,
    readonly limit: number,
    readonly actual: number | undefined,
  ) {
    super(
      actual === undefined
        ? `${what} exceeds the limit of ${limit} bytes`
        : `${what} is ${actual} bytes, over the limit of ${limit} bytes`,
    );
  }
}

/** Fetching or uploading an artifact over HTTP failed, or its bytes did not match the hash or size. */
export class ArtifactTransferError extends AdbError {
  override readonly name = 'ArtifactTransferError';
  constructor(
    readonly url: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${redactUrl(url)}: ${detail}`, options);
  }
}

/** Query strings may hold signed tokens: keep them out of messages and logs. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?…`;
}
