// Gateway work for a host whose stream lives on another replica: desired-state nudges, drains and
// disconnects are told to every replica (only the holder acts); a command goes to the holder named
// in host.gateway_replica, which runs it on the stream and sends the result (or the error) back.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { agentv1 } from '@cphone/proto';
import type { Kysely } from 'kysely';
import type { AuthChange } from '../auth/auth-cache.js';
import type { Cluster } from '../cluster/cluster.js';
import {
  AbortedError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { streamHolder } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import type { CommandKind } from './types.js';

type ErrorKind = DomainError['kind'];

export type GatewayMessage =
  | { kind: 'desired'; hostId: string }
  | { kind: 'drain'; hostId: string; reason: string; deadlineMs?: number | undefined }
  | { kind: 'disconnect'; hostId: string; reason: string }
  /** End stream sessions on the host's sfu (issuedBeforeMs: StreamRevocationInit.issuedBefore). */
  | {
      kind: 'streams';
      hostId: string;
      sessionId?: string | undefined;
      deviceId?: string | undefined;
      tenantId?: string | undefined;
      reason: string;
      message: string;
      issuedBeforeMs?: number | undefined;
    }
  /** The host's agent said Hello on the sender: any older stream elsewhere is stale. */
  | { kind: 'superseded'; hostId: string }
  /** `command` is a cphone.agent.v1.Command (binary, base64) without its id. */
  | { kind: 'command'; id: string; hostId: string; command: string; deadlineMs: number }
  /** `result` is a CommandResult (binary, base64). */
  | { kind: 'result'; id: string; result?: string; error?: { kind: ErrorKind; message: string } }
  /** Cached authentications to drop (auth/auth-cache.ts); the cache listens for it, not the gateway. */
  | { kind: 'auth'; change: AuthChange }
  /** A tenant's rate limit overrides changed (api/rate-limit.ts): reload them. */
  | { kind: 'rate-limits' };

/** An error raised on the replica that ran the command, with its kind (and so its code) kept. */
export class RelayedError extends DomainError {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

// Plain Uint8Array, not a Buffer: bytes fields decoded from it are what a local result holds.
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));

// The kinds whose errors carry only a message are rebuilt as themselves; the rest keep their kind.
const REBUILT: Partial<Record<ErrorKind, new (message: string) => DomainError>> = {
  aborted: AbortedError,
  deadline_exceeded: DeadlineExceededError,
  failed_precondition: FailedPreconditionError,
  permission_denied: PermissionDeniedError,
  resource_exhausted: ResourceExhaustedError,
  unauthenticated: UnauthenticatedError,
  unavailable: UnavailableError,
};

function rebuild(kind: ErrorKind, message: string): DomainError {
  const Rebuilt = REBUILT[kind];
  return Rebuilt ? new Rebuilt(message) : new RelayedError(kind, message);
}

interface Waiting {
  resolve: (result: agentv1.CommandResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class CommandRelay {
  readonly #waiting = new Map<string, Waiting>();

  constructor(
    private readonly cluster: Cluster<GatewayMessage>,
    private readonly db: Kysely<Database>,
    private readonly logger: Logger,
    private readonly now: () => Date,
  ) {}

  /** Sends the command through the replica holding the host's stream. */
  async send(
    hostId: string,
    deviceId: string,
    kind: CommandKind,
    deadline: Date,
  ): Promise<agentv1.CommandResult> {
    const holder = await streamHolder(this.db, hostId);
    if (!holder || holder === this.cluster.replicaId) {
      throw new UnavailableError(`host ${JSON.stringify(hostId)} is not connected`);
    }
    const id = newId('rcmd');
    const command = toBinary(agentv1.CommandSchema, create(agentv1.CommandSchema, { deviceId, kind }));
    const result = new Promise<agentv1.CommandResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#waiting.delete(id);
          reject(
            new DeadlineExceededError(
              `command ${kind.case} on device ${JSON.stringify(deviceId)} got no result from replica ${holder} before its deadline`,
            ),
          );
        },
        Math.max(0, deadline.getTime() - this.now().getTime()),
      );
      timer.unref();
      this.#waiting.set(id, { resolve, reject, timer });
    });
    try {
      await this.cluster.publish(holder, {
        kind: 'command',
        id,
        hostId,
        command: Buffer.from(command).toString('base64'),
        deadlineMs: deadline.getTime(),
      });
    } catch (error) {
      this.#settle(id)?.reject(new UnavailableError(`host ${JSON.stringify(hostId)}: relay failed`));
      this.logger.warn({ err: error, hostId }, 'command relay publish failed');
    }
    return result;
  }

  /** A result came back from the holder. */
  receive(message: Extract<GatewayMessage, { kind: 'result' }>): void {
    const waiting = this.#settle(message.id);
    if (!waiting) return;
    if (message.error) waiting.reject(rebuild(message.error.kind, message.error.message));
    else waiting.resolve(fromBinary(agentv1.CommandResultSchema, fromBase64(message.result ?? '')));
  }

  /** Runs a command sent by another replica on the local stream and answers it. */
  async serve(
    from: string,
    message: Extract<GatewayMessage, { kind: 'command' }>,
    run: (deviceId: string, kind: CommandKind, deadline: Date) => Promise<agentv1.CommandResult>,
  ): Promise<void> {
    let reply: GatewayMessage;
    try {
      const command = fromBinary(agentv1.CommandSchema, fromBase64(message.command));
      if (command.kind.case === undefined) throw new UnavailableError('relayed command without a kind');
      const result = await run(command.deviceId, command.kind, new Date(message.deadlineMs));
      reply = {
        kind: 'result',
        id: message.id,
        result: Buffer.from(toBinary(agentv1.CommandResultSchema, result)).toString('base64'),
      };
    } catch (error) {
      const kind: ErrorKind = error instanceof DomainError ? error.kind : 'unavailable';
      const text = error instanceof DomainError ? error.message : 'the command failed on the holding replica';
      if (!(error instanceof DomainError)) this.logger.error({ err: error }, 'relayed command failed');
      reply = { kind: 'result', id: message.id, error: { kind, message: text } };
    }
    await this.cluster.publish(from, reply);
  }

  /** This replica is closing: nothing pending will be answered here. */
  rejectAll(reason: string): void {
    for (const id of [...this.#waiting.keys()]) this.#settle(id)?.reject(new UnavailableError(reason));
  }

  #settle(id: string): Waiting | undefined {
    const waiting = this.#waiting.get(id);
    if (!waiting) return undefined;
    this.#waiting.delete(id);
    clearTimeout(waiting.timer);
    return waiting;
  }
}
