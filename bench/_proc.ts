// What the benchmarks read of a process from /proc.
import { readdir, readFile } from 'node:fs/promises';

/**
 * CPU seconds the process has run so far, every thread: the sum of /proc/<pid>/task/<tid>/schedstat
 * (the scheduler's run time in ns). utime/stime in /proc/<pid>/stat are counted in 10 ms ticks, too
 * coarse for an agent that runs for well under a millisecond at a time.
 */
export async function cpuSeconds(pid: number): Promise<number> {
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
    ns += Number(text.split(' ')[0]);
  }
  return ns / 1e9;
}
