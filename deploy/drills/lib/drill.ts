// What every drill shares: lean or full, progress lines on stderr, the JSON summary on stdout.

export type Mode = 'lean' | 'full';

export function modeFromArgs(argv: string[] = process.argv.slice(2)): Mode {
  const flag =
    argv.find((a) => a.startsWith('--mode='))?.slice('--mode='.length) ??
    (argv.includes('--full') ? 'full' : 'lean');
  if (flag !== 'lean' && flag !== 'full')
    throw new Error(`--mode must be lean or full, not ${JSON.stringify(flag)}`);
  return flag;
}

export function progress(drill: string): (message: string, fields?: Record<string, unknown>) => void {
  const started = Date.now();
  return (message, fields = {}) => {
    const at = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(
      `[${drill} +${at}s] ${message}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`,
    );
  };
}

/** Runs `drill` as a command: prints its summary as JSON, exits 1 when it did not pass. */
export async function runAsCommand(drill: () => Promise<{ passed: boolean }>): Promise<void> {
  try {
    const summary = await drill();
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    process.exit(summary.passed ? 0 : 1);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  }
}

/** Runs `worker` over `items` with at most `concurrency` at a time. */
export async function pool<T>(
  items: T[],
  concurrency: number,
  worker: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  });
  await Promise.all(lanes);
}

export const ms = (since: number): number => Math.round(performance.now() - since);
