import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { agentv1 } from '@cphone/proto';
import { status } from '@grpc/grpc-js';
import {
  COMMAND_CODE_KINDS,
  commandFailure,
  ERROR_CODES,
  grpcStatusOf,
  isDatabaseUnavailable,
  isInternal,
  MAX_ERROR_MESSAGE_CHARS,
  toConnectError,
} from './error-codes.js';
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  type DomainError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from './errors.js';
import { InvalidArgumentError as SchedulerInvalidArgumentError } from './scheduler/index.js';

const examples: DomainError[] = [
  new InvalidArgumentError('count', 0, 'must be positive'),
  new NotFoundError('device', 'dev_1'),
  new AlreadyExistsError('host', 'name', 'rack1'),
  new FailedPreconditionError('not open'),
  new ResourceExhaustedError('quota'),
  new PermissionDeniedError('no'),
  new UnauthenticatedError('who'),
  new DeadlineExceededError('late'),
  new UnavailableError('away'),
  new AbortedError('raced'),
  new UnimplementedError('too old'),
];

test('every domain error kind has a row, and both protocols agree on the code', () => {
  assert.deepEqual(new Set(examples.map((e) => e.kind)), new Set(Object.keys(ERROR_CODES)));
  for (const error of examples) {
    const connect = toConnectError(error);
    const grpc = grpcStatusOf(error);
    assert.equal(connect.code, ERROR_CODES[error.kind].connect);
    assert.equal(grpc.code, ERROR_CODES[error.kind].grpc);
    // Connect's codes are gRPC's numbers; a row that mixed them up would show here.
    assert.equal(Number(connect.code), Number(grpc.code), error.kind);
    assert.equal(connect.rawMessage, error.message);
    assert.equal(grpc.details, error.message);
    assert.equal(isInternal(error), false);
  }
});

test('the scheduler’s own InvalidArgumentError maps to INVALID_ARGUMENT on both sides', () => {
  const error = new SchedulerInvalidArgumentError('count', 0, 'must be an integer in 1..100');
  assert.equal(toConnectError(error).code, Code.InvalidArgument);
  assert.deepEqual(grpcStatusOf(error), { code: status.INVALID_ARGUMENT, details: error.message });
  assert.equal(isInternal(error), false);
});

test('anything else is internal and says nothing of its cause', () => {
  const cause = new Error('relation "device" does not exist');
  assert.equal(toConnectError(cause).code, Code.Internal);
  assert.equal(toConnectError(cause).rawMessage, 'internal error');
  assert.deepEqual(grpcStatusOf(cause), { code: status.INTERNAL, details: 'internal error' });
  assert.deepEqual(grpcStatusOf('a string'), { code: status.INTERNAL, details: 'internal error' });
  assert.equal(isInternal(cause), true);
});

test('a database that cannot be reached is UNAVAILABLE (retry), naming no cause', () => {
  const sqlstate = (code: string, message: string) => Object.assign(new Error(message), { code });
  const errno = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });
  const unavailable = [
    sqlstate('57P01', 'terminating connection due to administrator command'),
    sqlstate('57P03', 'the database system is starting up'),
    sqlstate('08006', 'connection failure'),
    sqlstate('25006', 'cannot execute INSERT in a read-only transaction'),
    errno('ECONNREFUSED'),
    errno('ECONNRESET'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')], ''),
  ];
  for (const error of unavailable) {
    assert.equal(isDatabaseUnavailable(error), true, error.message);
    const mapped = toConnectError(error);
    assert.equal(mapped.code, Code.Unavailable, error.message);
    assert.equal(mapped.rawMessage, 'the database is unavailable; retry');
    assert.deepEqual(grpcStatusOf(error), {
      code: status.UNAVAILABLE,
      details: 'the database is unavailable; retry',
    });
    assert.equal(isInternal(error), true, 'still logged as a failure of the server');
  }
  for (const error of [
    sqlstate('23505', 'duplicate key value violates unique constraint'),
    sqlstate('42P01', 'relation "device" does not exist'),
    new Error('Connection to the moon refused'),
  ]) {
    assert.equal(isDatabaseUnavailable(error), false, error.message);
    assert.equal(toConnectError(error).code, Code.Internal);
  }
});

test('a Connect error passes through; every message sent is bounded', () => {
  const own = new ConnectError('unsupported compression', Code.Unimplemented);
  assert.equal(toConnectError(own), own);
  const long = new FailedPreconditionError(`upload ${'u'.repeat(10_000)} is closed`);
  assert.ok(toConnectError(long).rawMessage.length <= MAX_ERROR_MESSAGE_CHARS + 40);
  assert.ok(grpcStatusOf(long).details.length <= MAX_ERROR_MESSAGE_CHARS + 40);
  const longConnect = new ConnectError('v'.repeat(10_000), Code.InvalidArgument);
  assert.equal(toConnectError(longConnect).code, Code.InvalidArgument);
  assert.ok(toConnectError(longConnect).rawMessage.length <= MAX_ERROR_MESSAGE_CHARS + 40);
});

test('an agent’s command code becomes the error of the same name; its INTERNAL stays internal', () => {
  for (const [code, kind] of Object.entries(COMMAND_CODE_KINDS)) {
    const name = agentv1.CommandCode[Number(code)] ?? '';
    const failure = commandFailure(Number(code), 'device dev_1: no room');
    assert.equal(failure?.kind, kind);
    assert.equal(failure?.message, 'device dev_1: no room');
    assert.equal(
      Code[toConnectError(failure).code],
      name
        .toLowerCase()
        .replace(/_(.)/g, (_m, c: string) => c.toUpperCase())
        .replace(/^./, (c) => c.toUpperCase()),
    );
  }
  // Every failure code but the agent's own INTERNAL has a row.
  const codes = Object.values(agentv1.CommandCode).filter((v): v is number => typeof v === 'number');
  for (const code of codes) {
    const mapped = COMMAND_CODE_KINDS[code as agentv1.CommandCode] !== undefined;
    const expected = ![
      agentv1.CommandCode.UNSPECIFIED,
      agentv1.CommandCode.OK,
      agentv1.CommandCode.INTERNAL,
    ].includes(code);
    assert.equal(mapped, expected, agentv1.CommandCode[code]);
  }
  assert.equal(commandFailure(agentv1.CommandCode.INTERNAL, 'disk on fire'), undefined);
});
