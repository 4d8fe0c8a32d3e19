// Domain errors. Each says what was wrong and with which value; one table below maps them to the
// Connect code (the public API) and the gRPC status (the agent stream). Internal causes are logged,
// never sent.
import { Code } from '@connectrpc/connect';
import { status } from '@grpc/grpc-js';

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

/** The one code table: each domain error kind, as a Connect code and as a gRPC status. */
export const ERROR_CODES: Record<DomainError['kind'], { connect: Code; grpc: status }> = {
  invalid_argument: { connect: Code.InvalidArgument, grpc: status.INVALID_ARGUMENT },
  not_found: { connect: Code.NotFound, grpc: status.NOT_FOUND },
  already_exists: { connect: Code.AlreadyExists, grpc: status.ALREADY_EXISTS },
  failed_precondition: { connect: Code.FailedPrecondition, grpc: status.FAILED_PRECONDITION },
  resource_exhausted: { connect: Code.ResourceExhausted, grpc: status.RESOURCE_EXHAUSTED },
  permission_denied: { connect: Code.PermissionDenied, grpc: status.PERMISSION_DENIED },
  unauthenticated: { connect: Code.Unauthenticated, grpc: status.UNAUTHENTICATED },
  deadline_exceeded: { connect: Code.DeadlineExceeded, grpc: status.DEADLINE_EXCEEDED },
  unavailable: { connect: Code.Unavailable, grpc: status.UNAVAILABLE },
  aborted: { connect: Code.Aborted, grpc: status.ABORTED },
};

/** The gRPC status of an error: its kind's, INTERNAL for anything that is not a domain error. */
export function grpcStatusOf(error: unknown): status {
  return error instanceof DomainError ? ERROR_CODES[error.kind].grpc : status.INTERNAL;
}
