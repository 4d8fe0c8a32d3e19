// The sim runtime's memory of its phones: one small JSON file, rewritten atomically on each change,
// so a restarted agent finds the phones the previous process made.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuntimeError } from './errors.js';
import type { DeviceSpec } from './types.js';

export interface SimRecord {
  readonly spec: DeviceSpec;
  readonly runtimeId: string;
  /** What the phone should be doing; `running` phones are started again when the runtime opens. */
  readonly state: 'created' | 'running' | 'exited';
  readonly exitCode?: number;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** Last port the phone listened on; reused on restart when free, so endpoints stay stable. */
  readonly port?: number;
}

interface SimFile {
  readonly version: 1;
  readonly devices: Record<string, SimRecord>;
}

export class SimStore {
  readonly #path: string;
  #devices = new Map<string, SimRecord>();
  #writes: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const file = JSON.parse(text) as SimFile;
    if (file.version !== 1)
      throw new RuntimeError(`sim state ${this.#path}: unknown version ${String(file.version)}`);
    this.#devices = new Map(Object.entries(file.devices));
  }

  get(deviceId: string): SimRecord | undefined {
    return this.#devices.get(deviceId);
  }

  all(): SimRecord[] {
    return [...this.#devices.values()];
  }

  /** Records the change in memory at once and on disk before the promise resolves. */
  put(record: SimRecord): Promise<void> {
    this.#devices.set(record.spec.deviceId, record);
    return this.#flush();
  }

  delete(deviceId: string): Promise<void> {
    this.#devices.delete(deviceId);
    return this.#flush();
  }

  #flush(): Promise<void> {
    const snapshot: SimFile = { version: 1, devices: Object.fromEntries(this.#devices) };
    // Serialised so an older snapshot never lands after a newer one.
    this.#writes = this.#writes.then(async () => {
      await mkdir(dirname(this.#path), { recursive: true });
      const tmp = `${this.#path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(snapshot, null, 2));
      await rename(tmp, this.#path);
    });
    return this.#writes;
  }
}
