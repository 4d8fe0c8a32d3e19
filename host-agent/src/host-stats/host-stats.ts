import { readFile, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { type CpuTimes, cpuPercent, parseLoadAvg, parseMemInfo, parseProcStat } from './proc.js';

/** Physical capacity of the host, as Hello reports it. */
export interface HostCapacity {
  readonly vcpuMillicores: number;
  readonly memoryBytes: number;
  readonly storageBytes: number;
}

/** Live load, as a heartbeat reports it (less the device count, which the reconciler knows). */
export interface HostLoadSample {
  readonly cpuPercent: number;
  readonly loadAverage1m: number;
  readonly memoryUsedBytes: number;
  readonly memoryTotalBytes: number;
  readonly diskUsedBytes: number;
  readonly diskTotalBytes: number;
}

export interface HostStatsOptions {
  /** The file system whose size and use are reported (the agent's data dir). */
  readonly dataDir: string;
  /** Root of procfs; tests point it at fixtures. Default /proc. */
  readonly procDir?: string;
}

/**
 * Reads host figures from /proc and statfs. CPU % is the busy share since the previous sample
 * (the previous heartbeat), so each call both reads and advances the baseline.
 */
export class HostStats {
  readonly #dataDir: string;
  readonly #procDir: string;
  #previousCpu: CpuTimes | undefined;

  constructor(options: HostStatsOptions) {
    this.#dataDir = options.dataDir;
    this.#procDir = options.procDir ?? '/proc';
  }

  async capacity(): Promise<HostCapacity> {
    const [mem, disk] = await Promise.all([this.#memInfo(), this.#disk()]);
    return {
      vcpuMillicores: availableParallelism() * 1000,
      memoryBytes: mem.totalBytes,
      storageBytes: disk.totalBytes,
    };
  }

  async sample(): Promise<HostLoadSample> {
    const [stat, loadavg, mem, disk] = await Promise.all([
      readFile(`${this.#procDir}/stat`, 'utf8'),
      readFile(`${this.#procDir}/loadavg`, 'utf8'),
      this.#memInfo(),
      this.#disk(),
    ]);
    const cpu = parseProcStat(stat);
    const percent = this.#previousCpu === undefined ? 0 : cpuPercent(this.#previousCpu, cpu);
    this.#previousCpu = cpu;
    return {
      cpuPercent: percent,
      loadAverage1m: parseLoadAvg(loadavg),
      memoryUsedBytes: mem.totalBytes - mem.availableBytes,
      memoryTotalBytes: mem.totalBytes,
      diskUsedBytes: disk.totalBytes - disk.freeBytes,
      diskTotalBytes: disk.totalBytes,
    };
  }

  async #memInfo() {
    return parseMemInfo(await readFile(`${this.#procDir}/meminfo`, 'utf8'));
  }

  async #disk(): Promise<{ totalBytes: number; freeBytes: number }> {
    const fs = await statfs(this.#dataDir);
    return { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bfree * fs.bsize };
  }
}
