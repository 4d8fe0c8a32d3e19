// The one table from domain errors to wire codes: Connect for the public API, gRPC for the agent
// stream. Anything that is not a domain error is an internal failure: the caller gets a plain
// "internal error" and the cause belongs in the log, never on the wire.
import { Code, ConnectError } from '@connectrpc/connect';
import { agentv1 } from '@cphone/proto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AgentCommandError, DomainError } from './errors.js';
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
  unimplemented: { connect: Code.Unimplemented, grpc: GrpcStatus.UNIMPLEMENTED },
};

/**
 * A message sent to a client is cut here whatever built it: domain errors quote values bounded
 * (errors.ts quote()), but free-form messages may still carry a long value.
 */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

const INTERNAL_MESSAGE = 'internal error';
const DATABASE_UNAVAILABLE_MESSAGE = 'the database is unavailable; retry';

// SQLSTATEs of a server that is going away or not the primary: connection exceptions (class 08),
// admin/crash shutdown and "cannot connect now" (57P01..57P03), and a write reaching a standby
// (25006: read-only transaction, mid-failover).
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '25006']);
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /^Client has encountered a connection error and is not queryable/,
];

/**
 * True when `error` says the database cannot be reached now (it restarted, failed over, or the
 * connection broke), not that the request or the code was wrong: a later retry may well succeed.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code))) return true;
  if (typeof code === 'string' && UNAVAILABLE_ERRNOS.has(code)) return true;
  if (error instanceof AggregateError && error.errors.some(isDatabaseUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(error.message));
}

/** The error's kind, or undefined for an internal failure (a bug, a database outage...). */
export function errorKind(error: unknown): Kind | undefined {
  if (error instanceof DomainError) return error.kind;
  // The scheduler is pure and keeps its own error type (no dependency on ../errors).
  if (error instanceof SchedulerInvalidArgumentError) return 'invalid_argument';
  return undefined;
}

/**
 * True when the error is not a domain error: its cause must be logged, and the client sees "internal
 * error" (or, when the database is unreachable, UNAVAILABLE asking for a retry).
 */
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
  if (kind === undefined && isDatabaseUnavailable(error))
    return new ConnectError(DATABASE_UNAVAILABLE_MESSAGE, Code.Unavailable);
  if (kind === undefined) return new ConnectError(INTERNAL_MESSAGE, Code.Internal);
  return new ConnectError(bounded((error as Error).message), ERROR_CODES[kind].connect);
}

/** The status an agent stream is closed with when `error` ends it. */
export function grpcStatusOf(error: unknown): { code: GrpcStatus; details: string } {
  const kind = errorKind(error);
  if (kind === undefined && isDatabaseUnavailable(error))
    return { code: GrpcStatus.UNAVAILABLE, details: DATABASE_UNAVAILABLE_MESSAGE };
  if (kind === undefined) return { code: GrpcStatus.INTERNAL, details: INTERNAL_MESSAGE };
  return { code: ERROR_CODES[kind].grpc, details: bounded((error as Error).message) };
}

/**
 * The agent's command codes, read the other way: a failure an agent reports becomes a domain error
 * of the kind of the same name, which the table above sends on. INTERNAL and UNSPECIFIED are not
 * here: the agent's own failure is logged and the caller gets "internal error".
 */
export const COMMAND_CODE_KINDS: Readonly<Partial<Record<agentv1.CommandCode, Kind>>> = {
  [agentv1.CommandCode.INVALID_ARGUMENT]: 'invalid_argument',
  [agentv1.CommandCode.NOT_FOUND]: 'not_found',
  [agentv1.CommandCode.FAILED_PRECONDITION]: 'failed_precondition',
  [agentv1.CommandCode.DEADLINE_EXCEEDED]: 'deadline_exceeded',
  [agentv1.CommandCode.RESOURCE_EXHAUSTED]: 'resource_exhausted',
  [agentv1.CommandCode.UNIMPLEMENTED]: 'unimplemented',
  [agentv1.CommandCode.UNAVAILABLE]: 'unavailable',
  [agentv1.CommandCode.ABORTED]: 'aborted',
};

/** The domain error for an agent's failed command, or undefined when the agent failed internally. */
export function commandFailure(code: agentv1.CommandCode, message: string): DomainError | undefined {
  const kind = COMMAND_CODE_KINDS[code];
  return kind === undefined ? undefined : new AgentCommandError(kind, message);
}
