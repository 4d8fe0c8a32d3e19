// How a failure leaves the CLI: one line on stderr naming what failed (the API's code and message,
// its request id), and an exit code a script can branch on.
import { Code, ConnectError } from '@connectrpc/connect';

/** Exit codes. 1 is any other failure; 2 is a command line the CLI cannot run. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidArgument: 3,
  notFound: 4,
  permissionDenied: 5,
  alreadyExists: 6,
  failedPrecondition: 7,
  resourceExhausted: 8,
  unavailable: 9,
  interrupted: 130,
} as const;

const BY_CODE: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: EXIT.invalidArgument,
  [Code.OutOfRange]: EXIT.invalidArgument,
  [Code.NotFound]: EXIT.notFound,
  [Code.PermissionDenied]: EXIT.permissionDenied,
  [Code.Unauthenticated]: EXIT.permissionDenied,
  [Code.AlreadyExists]: EXIT.alreadyExists,
  [Code.Aborted]: EXIT.failedPrecondition,
  [Code.FailedPrecondition]: EXIT.failedPrecondition,
  [Code.ResourceExhausted]: EXIT.resourceExhausted,
  [Code.Unavailable]: EXIT.unavailable,
  [Code.DeadlineExceeded]: EXIT.unavailable,
};

/** A command line that cannot be run as written (exit 2). */
export class UsageError extends Error {}

/** A failure found by the CLI itself, with the exit code it should end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
  }
}

/** Connect's code names as the API documents them (NOT_FOUND, not not_found). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}

export interface RenderedError {
  message: string;
  exitCode: number;
}

export function renderError(error: unknown): RenderedError {
  if (error instanceof UsageError) return { message: `error: ${error.message}`, exitCode: EXIT.usage };
  if (error instanceof CliError) return { message: `error: ${error.message}`, exitCode: error.exitCode };
  if (error instanceof ConnectError || isConnectLike(error)) {
    const e = ConnectError.from(error);
    if (e.code === Code.Unavailable && /ECONNREFUSED/.test(String(e.cause ?? e.message))) {
      return {
        message: `error: UNAVAILABLE: cannot reach the API (${e.rawMessage}); is the platform up (npm start) and the context's server right (cphone config get-contexts)?`,
        exitCode: EXIT.unavailable,
      };
    }
    const requestId = e.metadata.get('x-request-id');
    return {
      message: `error: ${codeName(e.code)}: ${e.rawMessage}${requestId ? ` (request id ${requestId})` : ''}`,
      exitCode: BY_CODE[e.code] ?? EXIT.failure,
    };
  }
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ECONNREFUSED') {
    return { message: `error: cannot connect: ${e.message}`, exitCode: EXIT.unavailable };
  }
  return { message: `error: ${e?.message ?? String(error)}`, exitCode: EXIT.failure };
}

function isConnectLike(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: string }).name === 'ConnectError';
}
