// mediasoup workers (one process each) and the WebRtcServer each listens on: every viewer transport
// of a worker shares its one UDP and one TCP port, so a host opens a port per worker, not per
// viewer. A worker that dies is logged, counted and replaced on the same port; the rooms it served
// learn it from their router ('workerclose') and close, so their viewers join again.

import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import type { Logger } from 'pino';
import type { SfuMetrics } from './metrics.js';

/** Send and receive buffer of each worker's shared UDP socket. */
const UDP_BUFFER_BYTES = 4 * 1024 * 1024;

export interface WorkerPoolOptions {
  readonly count: number;
  readonly listenIp: string;
  readonly announcedAddress: string | undefined;
  /** One per worker; 0 picks any free port (tests). */
  readonly ports: readonly number[];
  readonly logLevel: types.WorkerLogLevel;
  readonly log: Logger;
  readonly metrics: SfuMetrics;
}

/** One worker and its server; `worker` changes when a dead one is replaced. */
export interface WorkerSlot {
  readonly index: number;
  worker: types.Worker;
  server: types.WebRtcServer;
}

export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: WorkerSlot[] = [];
  #closed = false;

  private constructor(options: WorkerPoolOptions) {
    this.#options = options;
  }

  static async create(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      for (let index = 0; index < options.count; index++) {
        const { worker, server } = await pool.#start(index);
        pool.#slots.push({ index, worker, server });
      }
    } catch (error) {
      pool.close();
      throw error;
    }
    options.metrics.workers.set(pool.#slots.length);
    return pool;
  }

  get slots(): readonly WorkerSlot[] {
    return this.#slots;
  }

  /** The slot for a new room: the live one with the least `load` (rooms on it). */
  pick(load: (slot: WorkerSlot) => number): WorkerSlot {
    const alive = this.#slots.filter((s) => !s.worker.closed);
    const slot = alive.sort((a, b) => load(a) - load(b) || a.index - b.index)[0];
    if (!slot) throw new Error('no mediasoup worker is running');
    return slot;
  }

  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) slot.worker.close();
    this.#options.metrics.workers.set(0);
  }

  async #start(index: number): Promise<{ worker: types.Worker; server: types.WebRtcServer }> {
    const { listenIp, announcedAddress, ports, logLevel } = this.#options;
    const worker = await mediasoup.createWorker({ logLevel });
    const port = ports[index] ?? 0;
    const listen = (protocol: 'udp' | 'tcp'): types.TransportListenInfo => ({
      protocol,
      ip: listenIp,
      ...(announcedAddress ? { announcedAddress } : {}),
      ...(port ? { port } : {}),
      // Every viewer of this worker shares the one UDP socket: room for a frame's burst to a few
      // hundred viewers beyond the kernel's default 208 KiB. The kernel caps this at
      // net.core.wmem_max / rmem_max (deploy/host/install.sh raises them).
      ...(protocol === 'udp' ? { sendBufferSize: UDP_BUFFER_BYTES, recvBufferSize: UDP_BUFFER_BYTES } : {}),
    });
    let server: types.WebRtcServer;
    try {
      server = await worker.createWebRtcServer({ listenInfos: [listen('udp'), listen('tcp')] });
    } catch (error) {
      worker.close();
      throw error;
    }
    worker.once('died', (error) => this.#died(index, worker, error));
    return { worker, server };
  }

  #died(index: number, worker: types.Worker, error: Error): void {
    const { log, metrics } = this.#options;
    log.error({ err: error, worker: index, pid: worker.pid }, 'mediasoup worker died; replacing it');
    metrics.workerDeaths.inc();
    metrics.workers.dec();
    void this.#replace(index);
  }

  async #replace(index: number): Promise<void> {
    const { log, metrics } = this.#options;
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        const { worker, server } = await this.#start(index);
        if (this.#closed) {
          worker.close();
          return;
        }
        const slot = this.#slots[index]!;
        slot.worker = worker;
        slot.server = server;
        metrics.workers.inc();
        log.info({ worker: index, pid: worker.pid }, 'mediasoup worker replaced');
        return;
      } catch (error) {
        log.error({ err: error, worker: index, attempt }, 'could not start a mediasoup worker');
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 250 * 2 ** attempt)));
      }
    }
  }
}
