// Commands in flight on one agent stream, matched to their results by id. Like mediasoup's Channel:
// each has a deadline timer, and closing the stream rejects everything still pending.
import { agentv1 } from '@cphone/proto';
import { DeadlineExceededError, type DomainError } from '../errors.js';
import type { Metrics } from '../metrics.js';

interface Pending {
  kind: string;
  hostId: string;
  deviceId: string;
  resolve: (result: agentv1.CommandResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class PendingCommands {
  readonly #pending = new Map<string, Pending>();

  constructor(private readonly metrics: Metrics) {}

  get size(): number {
    return this.#pending.size;
  }

  /** Registers a command; the promise settles on its result, its deadline or close(). */
  add(commandId: string, info: { kind: string; hostId: string; deviceId: string }, timeoutMs: number) {
    return new Promise<agentv1.CommandResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#settle(commandId, 'deadline_exceeded')?.reject(
            new DeadlineExceededError(
              `command ${info.kind} ${JSON.stringify(commandId)} on device ${JSON.stringify(info.deviceId)} got no result before its deadline`,
            ),
          );
        },
        Math.max(0, timeoutMs),
      );
      timer.unref();
      this.#pending.set(commandId, { ...info, resolve, reject, timer });
    });
  }

  /** Resolves the matching command; false when none is pending (late or unknown result). */
  resolve(result: agentv1.CommandResult): boolean {
    const outcome =
      result.code === agentv1.CommandCode.OK
        ? 'ok'
        : (agentv1.CommandCode[result.code] ?? 'unknown').toLowerCase();
    const pending = this.#settle(result.commandId, outcome);
    pending?.resolve(result);
    return pending !== undefined;
  }

  /** Rejects one command (e.g. it could not be sent). */
  reject(commandId: string, error: DomainError): void {
    this.#settle(commandId, error.kind)?.reject(error);
  }

  /** Rejects everything pending with `error` (the stream is gone). */
  rejectAll(error: DomainError): void {
    for (const id of [...this.#pending.keys()]) this.reject(id, error);
  }

  #settle(commandId: string, outcome: string): Pending | undefined {
    const pending = this.#pending.get(commandId);
    if (!pending) return undefined;
    this.#pending.delete(commandId);
    clearTimeout(pending.timer);
    this.metrics.commands.inc({ kind: pending.kind, outcome });
    return pending;
  }
}
