import { Code, ConnectError } from '@connectrpc/connect';
import { DomainError } from '../errors.js';

const CODES: Record<DomainError['kind'], Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  deadline_exceeded: Code.DeadlineExceeded,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
};

/**
 * The one place domain errors become Connect errors. Anything else is an internal failure: the
 * caller gets a plain "internal error" and the cause goes to the log.
 */
export function toConnectError(error: unknown): { error: ConnectError; internal: boolean } {
  if (error instanceof ConnectError) return { error, internal: error.code === Code.Internal };
  if (error instanceof DomainError)
    return { error: new ConnectError(error.message, CODES[error.kind]), internal: false };
  if (error instanceof Error && error.name === 'InvalidArgumentError') {
    // The scheduler's own typed error (pure module, no dependency on ../errors).
    return { error: new ConnectError(error.message, Code.InvalidArgument), internal: false };
  }
  return { error: new ConnectError('internal error', Code.Internal), internal: true };
}
