import { Code, ConnectError } from '@connectrpc/connect';
import { DomainError, ERROR_CODES } from '../errors.js';

/**
 * The one place domain errors become Connect errors. Anything else is an internal failure: the
 * caller gets a plain "internal error" and the cause goes to the log.
 */
export function toConnectError(error: unknown): { error: ConnectError; internal: boolean } {
  if (error instanceof ConnectError) return { error, internal: error.code === Code.Internal };
  if (error instanceof DomainError)
    return { error: new ConnectError(error.message, ERROR_CODES[error.kind].connect), internal: false };
  if (error instanceof Error && error.name === 'InvalidArgumentError') {
    // The scheduler's own typed error (pure module, no dependency on ../errors).
    return { error: new ConnectError(error.message, Code.InvalidArgument), internal: false };
  }
  return { error: new ConnectError('internal error', Code.Internal), internal: true };
}
