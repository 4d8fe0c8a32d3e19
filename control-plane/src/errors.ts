// Domain errors. Each says what was wrong and with which value; http/errors.ts maps them to
// Connect codes in one place. Internal causes are logged, never sent.

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
    | 'aborted';
}

export class InvalidArgumentError extends DomainError {
  readonly kind = 'invalid_argument';
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${reason}`);
  }
}

export class NotFoundError extends DomainError {
  readonly kind = 'not_found';
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} ${JSON.stringify(id)} not found`);
  }
}

export class AlreadyExistsError extends DomainError {
  readonly kind = 'already_exists';
  constructor(resource: string, field: string, value: string) {
    super(`${resource} with ${field} ${JSON.stringify(value)} already exists`);
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
