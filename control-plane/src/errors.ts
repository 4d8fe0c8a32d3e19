// Domain errors. Each says what was wrong and with which value; error-codes.ts maps them to
// Connect and gRPC codes in one place. Internal causes are logged, never sent.

/** Characters of a bad value an error message repeats back; see quote(). */
export const ECHO_CHARS = 100;

/**
 * The value as JSON for an error message, cut to its first ECHO_CHARS characters with its full
 * size after it: a client that sent 5 MiB must not get 5 MiB back, and logs stay readable.
 */
export function quote(value: unknown): string {
  if (typeof value === 'string') {
    if (value.length <= ECHO_CHARS) return JSON.stringify(value);
    return `${JSON.stringify(prefix(value))}… (${Buffer.byteLength(value)} bytes)`;
  }
  let json: string;
  try {
    json = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    json = typeof value;
  }
  return json.length <= ECHO_CHARS ? json : `${prefix(json)}… (${Buffer.byteLength(json)} bytes)`;
}

/** The first ECHO_CHARS characters, never ending inside a surrogate pair. */
function prefix(text: string): string {
  const cut = /[\uD800-\uDBFF]/.test(text.charAt(ECHO_CHARS - 1)) ? ECHO_CHARS - 1 : ECHO_CHARS;
  return text.slice(0, cut);
}

export abstract class DomainError extends Error {
  abstract readonly kind:
    | 'invalid_argument'
    | 'not_found'
    | 'already_exists'
    | 'failed_precondition'
    | 'resource_exhausted'
    | 'permission_denied'
    | 'unauthenticated'
    | 'deadline_exceeded'
    | 'unavailable'
    | 'aborted'
    | 'unimplemented';
}

export class InvalidArgumentError extends DomainError {
  readonly kind = 'invalid_argument';
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field} ${quote(value)}: ${reason}`);
  }
}

export class NotFoundError extends DomainError {
  readonly kind = 'not_found';
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} ${quote(id)} not found`);
  }
}

export class AlreadyExistsError extends DomainError {
  readonly kind = 'already_exists';
  constructor(resource: string, field: string, value: string) {
    super(`${resource} with ${field} ${quote(value)} already exists`);
  }
}

export class FailedPreconditionError extends DomainError {
  readonly kind = 'failed_precondition';
}

export class ResourceExhaustedError extends DomainError {
  readonly kind = 'resource_exhausted';
}

export class PermissionDeniedError extends DomainError {
  readonly kind = 'permission_denied';
}

export class UnauthenticatedError extends DomainError {
  readonly kind = 'unauthenticated';
}

export class DeadlineExceededError extends DomainError {
  readonly kind = 'deadline_exceeded';
}

export class UnavailableError extends DomainError {
  readonly kind = 'unavailable';
}

export class AbortedError extends DomainError {
  readonly kind = 'aborted';
}

/** What the other side does not do (an agent too old for a command). */
export class UnimplementedError extends DomainError {
  readonly kind = 'unimplemented';
}

/** A command the host agent refused or failed, with the kind its CommandCode names (error-codes.ts). */
export class AgentCommandError extends DomainError {
  constructor(
    readonly kind: DomainError['kind'],
    message: string,
  ) {
    super(message);
  }
}
