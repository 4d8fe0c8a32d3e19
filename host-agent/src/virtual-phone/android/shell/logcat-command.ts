import { formatEntry, LOG_FORMATS, type LogEntry, LogFilter, type LogFormat } from '../logcat.js';
import { type Command, untilAborted } from './command.js';

/**
 * `logcat [-d] [-c] [-t N] [-T N] [-s] [-v FORMAT] [-e REGEX] [-m N] [-b BUFFER] [tag:prio …]`:
 * dumps the buffer and, unless -d/-t, follows it until the client hangs up (adb's `exec logcat`).
 */
export const logcat: Command = async ({ argv, env, device, stdout, stderr, signal }) => {
  let dump = false;
  let tail: number | undefined;
  let silence = false;
  let format: LogFormat = 'threadtime';
  let regex: RegExp | undefined;
  let max = Number.POSITIVE_INFINITY;
  const specs: string[] = [];
  const usage = async (message: string): Promise<number> => {
    await stderr(`logcat: ${message}\n`);
    return 1;
  };
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => (arg.length > 2 && !arg.startsWith('--') ? arg.slice(2) : (argv[++i] ?? ''));
    if (arg === '-d') dump = true;
    else if (arg === '-c') {
      device.logcat.clear();
      return 0;
    } else if (arg === '-s') silence = true;
    else if (arg.startsWith('-t') || arg.startsWith('-T')) {
      tail = Number.parseInt(value(), 10);
      if (!Number.isInteger(tail) || tail < 0) return usage(`bad count for ${arg.slice(0, 2)}`);
      if (arg.startsWith('-t')) dump = true;
    } else if (arg.startsWith('-v')) {
      const name = value();
      // Modifiers (color, usec, UTC …) change nothing here.
      if ((LOG_FORMATS as readonly string[]).includes(name)) format = name as LogFormat;
      else if (
        ![
          'color',
          'usec',
          'UTC',
          'year',
          'zone',
          'epoch',
          'uid',
          'printable',
          'descriptive',
          'monotonic',
        ].includes(name)
      ) {
        return usage(`Invalid parameter "${name}" to -v`);
      }
    } else if (arg.startsWith('-e') || arg === '--regex') regex = new RegExp(value());
    else if (arg.startsWith('-m') || arg === '--max-count') max = Number.parseInt(value(), 10);
    else if (arg.startsWith('-b') || arg === '--buffer') value();
    else if (arg === '-B' || arg === '-D' || arg === '-Z') continue;
    else if (arg.startsWith('-')) return usage(`unknown option ${arg}`);
    else specs.push(arg);
  }
  const filter = new LogFilter();
  try {
    if (silence) filter.silenceOthers();
    // The environment's filters apply only when none are given (adb sets ANDROID_LOG_TAGS).
    if (specs.length > 0) filter.add(specs.join(' '));
    else if (env['ANDROID_LOG_TAGS']) filter.add(env['ANDROID_LOG_TAGS']);
  } catch (error) {
    return usage((error as Error).message);
  }
  let printed = 0;
  const show = (entry: LogEntry): string => {
    if (printed >= max || !filter.accepts(entry) || (regex && !regex.test(entry.message))) return '';
    printed++;
    return `${formatEntry(entry, format)}\n`;
  };
  const shown = device.logcat.entries().filter((e) => filter.accepts(e) && (!regex || regex.test(e.message)));
  const backlog = (tail === undefined ? shown : tail === 0 ? [] : shown.slice(-tail)).map(show).join('');
  if (dump || printed >= max) {
    await stdout(backlog);
    return 0;
  }
  // Following: new entries until the client hangs up, the phone reboots or -m is reached. The
  // subscription starts before the backlog is written, so no entry falls between the two.
  const done = new AbortController();
  const pending: Promise<void>[] = [stdout(backlog)];
  const unsubscribe = device.logcat.subscribe((entry) => {
    const text = show(entry);
    if (text) pending.push(stdout(text).catch(() => {}));
    if (printed >= max) done.abort();
  });
  await Promise.race([untilAborted(signal), untilAborted(device.lifetime), untilAborted(done.signal)]);
  unsubscribe();
  await Promise.all(pending);
  return 0;
};
