/** logcat's ring buffer, in `threadtime` format, with live subscribers for a streaming `logcat`. */
export class LogBuffer {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();

  constructor(readonly capacity = 2000) {}

  log(priority: 'V' | 'D' | 'I' | 'W' | 'E', tag: string, message: string, pid = 1000): void {
    const line = `${formatTime(new Date())} ${String(pid).padStart(5)} ${String(pid).padStart(5)} ${priority} ${tag}: ${message}`;
    this.#lines.push(line);
    if (this.#lines.length > this.capacity) this.#lines.splice(0, this.#lines.length - this.capacity);
    for (const listener of this.#listeners) listener(line);
  }

  lines(): readonly string[] {
    return this.#lines;
  }

  clear(): void {
    this.#lines.length = 0;
  }

  subscribe(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function formatTime(date: Date): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return `${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(date.getUTCMilliseconds(), 3)}`;
}
