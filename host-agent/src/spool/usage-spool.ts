import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One metering sample as the spool keeps it; the session maps it onto the wire's UsageSample. */
export interface SpooledSample {
  readonly sequence: number;
  readonly deviceId: string;
  readonly tenantId: string;
  /** Interval start (inclusive) and end (exclusive), epoch ms. */
  readonly startMs: number;
  readonly endMs: number;
  readonly vcpuMillicores: number;
  readonly memoryMib: number;
  readonly storageGib: number;
  /** Proto DeviceState number (RUNNING, BOOTING ...). */
  readonly state: number;
  readonly specRevision: number;
  /** Bytes sent to the internet in the interval (absent in lines spooled before egress was metered). */
  readonly egressBytes?: number;
}

export type SampleInit = Omit<SpooledSample, 'sequence'>;

export interface UsageSpoolOptions {
  /** Folder of the spool files (created if missing). */
  readonly dir: string;
  /** Rewrite the log once this many acknowledged lines sit at its head. Default 1000. */
  readonly compactAfter?: number;
}

interface SpoolState {
  /** Highest sequence ever handed out: the counter survives compaction of every line. */
  lastSequence: number;
  /** Highest sequence the control plane has acknowledged. */
  ackedSequence: number;
}

const LOG = 'usage.jsonl';
const STATE = 'usage-state.json';

/**
 * The durable usage spool. Samples are appended as JSON lines and fsynced before `append` resolves;
 * `usage-state.json` (written atomically) keeps the sequence counter and the acknowledged mark.
 * A crash at any point loses nothing that `append` returned and never reuses a sequence: on open,
 * the counter is the larger of the state file's and the log's last line, and a torn last line is
 * cut. Acknowledged lines are dropped by rewriting the log once enough of them pile up.
 */
export class UsageSpool {
  readonly #dir: string;
  readonly #compactAfter: number;
  #state: SpoolState = { lastSequence: 0, ackedSequence: 0 };
  /** Unacknowledged samples, in sequence order. */
  #pending: SpooledSample[] = [];
  /** Acknowledged lines still in the log file. */
  #deadLines = 0;
  #log: Awaited<ReturnType<typeof open>> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: UsageSpoolOptions) {
    this.#dir = options.dir;
    this.#compactAfter = options.compactAfter ?? 1000;
  }

  static async open(options: UsageSpoolOptions): Promise<UsageSpool> {
    const spool = new UsageSpool(options);
    await spool.#load();
    return spool;
  }

  get lastSequence(): number {
    return this.#state.lastSequence;
  }

  get ackedSequence(): number {
    return this.#state.ackedSequence;
  }

  /** Unacknowledged samples in order, optionally only those after `afterSequence`. */
  pending(afterSequence = 0, limit = Number.POSITIVE_INFINITY): SpooledSample[] {
    const out: SpooledSample[] = [];
    for (const sample of this.#pending) {
      if (sample.sequence <= afterSequence) continue;
      if (out.length >= limit) break;
      out.push(sample);
    }
    return out;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  /** Numbers the samples, writes and fsyncs them; resolves with them once durable. */
  append(samples: readonly SampleInit[]): Promise<SpooledSample[]> {
    return this.#serial(async () => {
      if (samples.length === 0) return [];
      const numbered = samples.map((s, i) => ({ ...s, sequence: this.#state.lastSequence + 1 + i }));
      const log = await this.#openLog();
      const { size } = await log.stat();
      try {
        await log.appendFile(numbered.map((s) => `${JSON.stringify(s)}\n`).join(''));
        await log.datasync();
      } catch (err) {
        // Leave no partial line for the next append to run into (disk full, I/O error).
        await log.truncate(size).catch(() => undefined);
        throw err;
      }
      this.#state.lastSequence += numbered.length;
      this.#pending.push(...numbered);
      return numbered;
    });
  }

  /** Every sample up to `sequence` is stored upstream: forget them (durably). Lower marks are ignored. */
  acknowledge(sequence: number): Promise<void> {
    return this.#serial(async () => {
      // An ack beyond what was ever written would skip future samples: clamp it.
      const mark = Math.min(sequence, this.#state.lastSequence);
      if (mark <= this.#state.ackedSequence) return;
      this.#state.ackedSequence = mark;
      const before = this.#pending.length;
      this.#pending = this.#pending.filter((s) => s.sequence > mark);
      this.#deadLines += before - this.#pending.length;
      await this.#writeState();
      if (this.#deadLines >= this.#compactAfter || (this.#pending.length === 0 && this.#deadLines > 0)) {
        await this.#compact();
      }
    });
  }

  /** Closes the log file; the spool can be opened again from the same folder. */
  close(): Promise<void> {
    return this.#serial(async () => {
      await this.#log?.close();
      this.#log = undefined;
    });
  }

  async #load(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const state = await readFile(join(this.#dir, STATE), 'utf8').then(
      (text) => JSON.parse(text) as SpoolState,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return { lastSequence: 0, ackedSequence: 0 };
        throw err;
      },
    );
    this.#state = { lastSequence: state.lastSequence, ackedSequence: state.ackedSequence };
    const text = await readFile(join(this.#dir, LOG), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const end = text.lastIndexOf('\n') + 1;
    for (const line of text.slice(0, end).split('\n')) {
      if (line === '') continue;
      const sample = JSON.parse(line) as SpooledSample;
      this.#state.lastSequence = Math.max(this.#state.lastSequence, sample.sequence);
      if (sample.sequence <= this.#state.ackedSequence) this.#deadLines++;
      else this.#pending.push(sample);
    }
    if (end < text.length) {
      // A torn write at a crash: the sample never counted as appended, so it can go.
      await writeFile(join(this.#dir, LOG), text.slice(0, end));
    }
    this.#pending.sort((a, b) => a.sequence - b.sequence);
  }

  async #openLog() {
    this.#log ??= await open(join(this.#dir, LOG), 'a');
    return this.#log;
  }

  async #writeState(): Promise<void> {
    await atomicWrite(join(this.#dir, STATE), JSON.stringify(this.#state));
  }

  /** Rewrites the log with the unacknowledged lines only. The state file is already durable. */
  async #compact(): Promise<void> {
    await this.#log?.close();
    this.#log = undefined;
    await atomicWrite(join(this.#dir, LOG), this.#pending.map((s) => `${JSON.stringify(s)}\n`).join(''));
    this.#deadLines = 0;
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** Write to a temporary file, fsync, rename over the target, fsync the folder. */
export async function atomicWrite(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
