export type LogPriority = 'V' | 'D' | 'I' | 'W' | 'E' | 'F';

export interface LogEntry {
  /** ms since the epoch */
  time: number;
  pid: number;
  tid: number;
  priority: LogPriority;
  tag: string;
  message: string;
}

/** logcat's ring buffer, with live subscribers for a streaming `logcat`. */
export class LogBuffer {
  readonly #entries: LogEntry[] = [];
  readonly #listeners = new Set<(entry: LogEntry) => void>();

  constructor(readonly capacity = 2000) {}

  log(priority: LogPriority, tag: string, message: string, pid = 1000): void {
    const entry: LogEntry = { time: Date.now(), pid, tid: pid, priority, tag, message };
    this.#entries.push(entry);
    if (this.#entries.length > this.capacity) this.#entries.splice(0, this.#entries.length - this.capacity);
    for (const listener of this.#listeners) listener(entry);
  }

  entries(): readonly LogEntry[] {
    return this.#entries;
  }

  /** The buffer in logcat's default `threadtime` format. */
  lines(): string[] {
    return this.#entries.map((entry) => formatEntry(entry, 'threadtime'));
  }

  clear(): void {
    this.#entries.length = 0;
  }

  subscribe(listener: (entry: LogEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export const LOG_FORMATS = [
  'brief',
  'process',
  'tag',
  'thread',
  'raw',
  'time',
  'threadtime',
  'long',
] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** One entry as Android's logprint.cpp prints it (UTC times; multi-line messages keep the prefix). */
export function formatEntry(entry: LogEntry, format: LogFormat): string {
  const { priority: p, tag, pid, tid } = entry;
  const time = formatTime(new Date(entry.time));
  const prefix = {
    brief: `${p}/${tag}(${String(pid).padStart(5)}): `,
    process: `${p}(${String(pid).padStart(5)}) `,
    tag: `${p}/${tag}: `,
    thread: `${p}(${String(pid).padStart(5)}:${String(tid).padStart(5)}) `,
    raw: '',
    time: `${time} ${p}/${tag}(${String(pid).padStart(5)}): `,
    threadtime: `${time} ${String(pid).padStart(5)} ${String(tid).padStart(5)} ${p} ${tag}: `,
    long: '',
  }[format];
  if (format === 'long') {
    return `[ ${time} ${String(pid).padStart(5)}:${String(tid).padStart(5)} ${p}/${tag} ]\n${entry.message}\n`;
  }
  const suffix = format === 'process' ? `  (${tag})` : '';
  return entry.message
    .split('\n')
    .map((line) => `${prefix}${line}${suffix}`)
    .join('\n');
}

function formatTime(date: Date): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return `${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(date.getUTCMilliseconds(), 3)}`;
}

const PRIORITIES = ['V', 'D', 'I', 'W', 'E', 'F', 'S'] as const;

/**
 * `tag:priority` filter specs as logcat takes them (arguments, else $ANDROID_LOG_TAGS): the most
 * specific rule wins, `*` sets the default (V unless given). An unparseable spec is an error.
 */
export class LogFilter {
  readonly #rules = new Map<string, number>();
  #fallback = 0;

  add(spec: string): void {
    for (const rule of spec.trim().split(/\s+/).filter(Boolean)) {
      const colon = rule.lastIndexOf(':');
      const tag = colon === -1 ? rule : rule.slice(0, colon);
      const letter = colon === -1 ? 'V' : rule.slice(colon + 1).toUpperCase();
      const level = PRIORITIES.indexOf(letter as (typeof PRIORITIES)[number]);
      if (level === -1 || tag === '') throw new Error(`Invalid filter expression: ${rule}`);
      if (tag === '*') this.#fallback = level;
      else this.#rules.set(tag, level);
    }
  }

  /** `-s`: everything not named is silent. */
  silenceOthers(): void {
    this.#fallback = PRIORITIES.indexOf('S');
  }

  accepts(entry: LogEntry): boolean {
    const level = this.#rules.get(entry.tag) ?? this.#fallback;
    return PRIORITIES.indexOf(entry.priority) >= level;
  }
}
