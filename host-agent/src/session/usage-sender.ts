import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { Logger } from 'pino';
import type { SpooledSample, UsageSpool } from '../spool/index.js';
import type { SessionLink } from './session.js';

export interface UsageSenderOptions {
  readonly spool: UsageSpool;
  readonly logger: Logger;
  /** Samples per UsageReport (the protocol allows 1000). Default 500. */
  readonly batchSize?: number;
  /** Samples sent but not yet acknowledged, at most. Default 5000. */
  readonly window?: number;
  /** Sent samples still unacknowledged after this are sent again on the same stream. Default 120 s. */
  readonly resendAfterMs?: number;
}

/**
 * Sends spooled usage samples in order until acknowledged. Per stream it remembers how far it has
 * sent; a new stream (or an ack that does not come) starts again after the acknowledged mark, so
 * every sample is sent until the control plane says it is stored. Ingestion is idempotent by
 * (host, sequence), so a duplicate costs nothing.
 */
export class UsageSender {
  readonly #o: UsageSenderOptions;
  #link: SessionLink | undefined;
  #sentUpTo = 0;
  #lastProgress = Date.now();

  constructor(options: UsageSenderOptions) {
    this.#o = options;
  }

  /** A new stream was welcomed; `ackSequence` is Welcome.usage_ack_sequence. */
  async welcomed(link: SessionLink, ackSequence: number): Promise<void> {
    await this.#o.spool.acknowledge(ackSequence);
    this.#link = link;
    this.#sentUpTo = this.#o.spool.ackedSequence;
    this.#lastProgress = Date.now();
    this.pump();
  }

  async acknowledged(sequence: number): Promise<void> {
    const before = this.#o.spool.ackedSequence;
    await this.#o.spool.acknowledge(sequence);
    if (this.#o.spool.ackedSequence > before) this.#lastProgress = Date.now();
    this.pump();
  }

  /** New samples are in the spool. */
  appended(_samples: readonly SpooledSample[]): void {
    this.pump();
  }

  /** Periodic check: resend what has waited too long for an ack. */
  tick(): void {
    const waiting = this.#sentUpTo > this.#o.spool.ackedSequence;
    if (waiting && Date.now() - this.#lastProgress > (this.#o.resendAfterMs ?? 120_000)) {
      this.#o.logger.warn(
        { from: this.#o.spool.ackedSequence + 1, to: this.#sentUpTo },
        'usage samples not acknowledged in time; sending them again',
      );
      this.#sentUpTo = this.#o.spool.ackedSequence;
      this.#lastProgress = Date.now();
      this.pump();
    }
  }

  pump(): void {
    const link = this.#link;
    if (link === undefined || link.signal.aborted) return;
    const batchSize = this.#o.batchSize ?? 500;
    const window = this.#o.window ?? 5000;
    for (;;) {
      const room = window - (this.#sentUpTo - this.#o.spool.ackedSequence);
      if (room <= 0) return;
      const batch = this.#o.spool.pending(this.#sentUpTo, Math.min(batchSize, room));
      if (batch.length === 0) return;
      const sent = link.send({
        body: {
          case: 'usageReport',
          value: {
            samples: batch.map((s) => ({
              sequence: BigInt(s.sequence),
              deviceId: s.deviceId,
              tenantId: s.tenantId,
              startTime: timestampFromMs(s.startMs),
              endTime: timestampFromMs(s.endMs),
              vcpuMillicores: s.vcpuMillicores,
              memoryMib: s.memoryMib,
              storageGib: s.storageGib,
              state: s.state,
              specRevision: BigInt(s.specRevision),
              egressBytes: BigInt(s.egressBytes ?? 0),
            })),
          },
        },
      });
      if (!sent) return;
      this.#sentUpTo = batch.at(-1)!.sequence;
    }
  }
}
