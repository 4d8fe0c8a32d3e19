// Parsers for the /proc files the heartbeat reads. Pure: they take the file's text.

/** Aggregate CPU times of /proc/stat's first line, in clock ticks. */
export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('/proc/stat has no aggregate "cpu" line');
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((n) => !Number.isFinite(n))) {
    throw new Error(`/proc/stat cpu line is malformed: ${JSON.stringify(line)}`);
  }
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const idleAll = idle + iowait;
  const total = user + nice + system + idleAll + irq + softirq + steal;
  return { busy: total - idleAll, total };
}

/** Busy share between two samples, 0..100 percent of all cores; 0 when no time passed. */
export function cpuPercent(previous: CpuTimes, current: CpuTimes): number {
  const total = current.total - previous.total;
  if (total <= 0) return 0;
  const busy = current.busy - previous.busy;
  return Math.min(100, Math.max(0, (busy / total) * 100));
}

export function parseLoadAvg(text: string): number {
  const first = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(first)) throw new Error(`/proc/loadavg is malformed: ${JSON.stringify(text)}`);
  return first;
}

export interface MemInfo {
  readonly totalBytes: number;
  readonly availableBytes: number;
}

export function parseMemInfo(text: string): MemInfo {
  const kib = (key: string): number | undefined => {
    const match = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  };
  const totalBytes = kib('MemTotal');
  if (totalBytes === undefined) throw new Error('/proc/meminfo has no MemTotal');
  // MemAvailable exists since Linux 3.14; older kernels get the classic estimate.
  const availableBytes =
    kib('MemAvailable') ?? (kib('MemFree') ?? 0) + (kib('Cached') ?? 0) + (kib('Buffers') ?? 0);
  return { totalBytes, availableBytes };
}
