// Typed errors of the runtime layer; each names the field or device and the value involved.

export class RuntimeError extends Error {
  override readonly name: string = 'RuntimeError';
}

export class DeviceNotFoundError extends RuntimeError {
  override readonly name = 'DeviceNotFoundError';
  constructor(readonly deviceId: string) {
    super(`device ${JSON.stringify(deviceId)} does not exist in this runtime`);
  }
}

export class InvalidSpecError extends RuntimeError {
  override readonly name = 'InvalidSpecError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid device spec: ${field}=${JSON.stringify(value)}: ${reason}`);
  }
}

export class SpecRevisionConflictError extends RuntimeError {
  override readonly name = 'SpecRevisionConflictError';
  constructor(
    readonly deviceId: string,
    readonly existingRevision: number,
    readonly requestedRevision: number,
  ) {
    super(
      `device ${JSON.stringify(deviceId)} exists with specRevision=${existingRevision}, ` +
        `create asked for specRevision=${requestedRevision}`,
    );
  }
}

/** The engine could not be reached or refused a call; `cause` holds the engine's error. */
export class RuntimeUnavailableError extends RuntimeError {
  override readonly name = 'RuntimeUnavailableError';
}

export class ImagePullError extends RuntimeError {
  override readonly name = 'ImagePullError';
  constructor(
    readonly image: string,
    detail: string,
  ) {
    super(`pulling image ${JSON.stringify(image)} failed: ${detail}`);
  }
}
