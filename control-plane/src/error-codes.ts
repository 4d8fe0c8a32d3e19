// The one table from domain errors to wire codes: Connect for the public API, gRPC for the agent
// stream. Anything that is not a domain error is an internal failure: the caller gets a plain
// "internal error" and the cause belongs in the log, never on the wire.
import { Code, ConnectError } from '@connectrpc/connect';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DomainError } from './errors.js';
import { InvalidArgumentError as SchedulerInvalidArgumentError } from './scheduler/index.js';

type Kind = DomainError['kind'];

/**
 * Written out per protocol although Connect reuses gRPC's numbers: each column is read by its own
 * protocol, and a reader checks one row at a glance.
 */
export const ERROR_CODES: Readonly<Record<Kind, { readonly connect: Code; readonly grpc: GrpcStatus }>> = {
  invalid_argument: { connect: Code.InvalidArgument, grpc: GrpcStatus.INVALID_ARGUMENT },
  not_found: { connect: Code.NotFound, grpc: GrpcStatus.NOT_FOUND },
  already_exists: { connect: Code.AlreadyExists, grpc: GrpcStatus.ALREADY_EXISTS },
  failed_precondition: { connect: Code.FailedPrecondition, grpc: GrpcStatus.FAILED_PRECONDITION },
  resource_exhausted: { connect: Code.ResourceExhausted, grpc: GrpcStatus.RESOURCE_EXHAUSTED },
  permission_denied: { connect: Code.PermissionDenied, grpc: GrpcStatus.PERMISSION_DENIED },
  unauthenticated: { connect: Code.Unauthenticated, grpc: GrpcStatus.UNAUTHENTICATED },
  deadline_exceeded: { connect: Code.DeadlineExceeded, grpc: GrpcStatus.DEADLINE_EXCEEDED },
  unavailable: { connect: Code.Unavailable, grpc: GrpcStatus.UNAVAILABLE },
  aborted: { connect: Code.Aborted, grpc: GrpcStatus.ABORTED },
};

/**
 * A message sent to a client is cut here whatever built it: domain errors quote values bounded
 * (errors.ts quote()), but free-form messages may still carry a long value.
 */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

const INTERNAL_MESSAGE = 'internal error';

/** The error's kind, or undefined for an internal failure (a bug, a database outage...). */
export function errorKind(error: unknown): Kind | undefined {
  if (error instanceof DomainError) return error.kind;
  // The scheduler is pure and keeps its own error type (no dependency on ../errors).
  if (error instanceof SchedulerInvalidArgumentError) return 'invalid_argument';
  return undefined;
}

/** True when the error is not a domain error: its cause must be logged, the client sees "internal error". */
export function isInternal(error: unknown): boolean {
  if (error instanceof ConnectError) return error.code === Code.Internal || error.code === Code.Unknown;
  return errorKind(error) === undefined;
}

function bounded(message: string): string {
  return message.length <= MAX_ERROR_MESSAGE_CHARS
    ? message
    : `${message.slice(0, MAX_ERROR_MESSAGE_CHARS)}… (${message.length} characters)`;
}

/**
 * The Connect error a public API caller gets. A ConnectError passes through (Connect's own protocol
 * errors, or one already mapped), with its message bounded.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) {
    if (error.rawMessage.length <= MAX_ERROR_MESSAGE_CHARS) return error;
    return new ConnectError(bounded(error.rawMessage), error.code, error.metadata);
  }
  const kind = errorKind(error);
  if (kind === undefined) return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
  return new ConnectError(bounded((error as Error).message), ERROR_CODES[kind].connect);
}

/** The status an agent stream is closed with when `error` ends it. */
export function grpcStatusOf(error: unknown): { code: GrpcStatus; details: string } {
  const kind = errorKind(error);
  if (kind === undefined) return { code: GrpcStatus.INTERNAL, details: INTERNAL_MESSAGE };
  return { code: ERROR_CODES[kind].grpc, details: bounded((error as Error).message) };
}
