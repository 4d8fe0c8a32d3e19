// Progress on stderr: a bar that redraws in place on a TTY; in a pipe or with --quiet nothing moves
// (a script gets the final line only), so logs never fill with carriage returns.
import { SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(finalLine?: string): void;
}

export function createProgress(options: {
  total: number;
  /** cli-progress format: {bar} {percentage} {value} {total} {eta_formatted} and payload keys. */
  format: string;
  quiet?: boolean;
  payload?: Record<string, string | number>;
  /** Formats value/total (e.g. bytes). */
  formatValue?: (v: number, type: 'value' | 'total') => string;
}): Progress {
  const live = Boolean(process.stderr.isTTY) && !options.quiet;
  if (!live) {
    return {
      update() {},
      setTotal() {},
      stop(line) {
        if (line && !options.quiet) process.stderr.write(`${line}\n`);
      },
    };
  }
  const bar = new SingleBar({
    format: options.format,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
    etaBuffer: 20,
    fps: 10,
    ...(options.formatValue
      ? {
          formatValue: (v: number, _o: unknown, type: string) =>
            options.formatValue?.(v, type as 'value') ?? String(v),
        }
      : {}),
  });
  bar.start(options.total, 0, options.payload ?? {});
  return {
    update: (done, payload) => bar.update(done, payload ?? {}),
    setTotal: (total) => bar.setTotal(total),
    stop(line) {
      bar.stop();
      if (line) process.stderr.write(`${line}\n`);
    },
  };
}

export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
