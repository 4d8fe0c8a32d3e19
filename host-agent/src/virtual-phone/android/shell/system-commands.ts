import type { LogPriority } from '../logcat.js';
import { type Command, resolvePath } from './command.js';

/** The processes a freshly booted Redroid shows; the phone runs no real ones. */
const PROCESSES = [
  { pid: 1, user: 'root', name: 'init' },
  { pid: 120, user: 'logd', name: 'logd' },
  { pid: 160, user: 'root', name: 'adbd' },
  { pid: 210, user: 'root', name: 'zygote64' },
  { pid: 330, user: 'system', name: 'surfaceflinger' },
  { pid: 520, user: 'system', name: 'system_server' },
  { pid: 780, user: 'u0_a50', name: 'com.android.systemui' },
] as const;

const ps: Command = async ({ stdout }) => {
  const rows = PROCESSES.map(
    ({ pid, user, name }) =>
      `${user.padEnd(12)}${String(pid).padStart(6)}${String(pid === 1 ? 0 : 1).padStart(6)} 1000000  10000 0                   0 S ${name}\n`,
  );
  await stdout(`USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n${rows.join('')}`);
  return 0;
};

const pidof: Command = async ({ argv, stdout }) => {
  const pids = PROCESSES.filter((p) => argv.slice(1).includes(p.name)).map((p) => p.pid);
  if (pids.length === 0) return 1;
  await stdout(`${pids.join(' ')}\n`);
  return 0;
};

const kill: Command = async ({ argv, stderr }) => {
  const known = new Set(PROCESSES.map((p) => String(p.pid)));
  let status = 0;
  for (const pid of argv.slice(1).filter((a) => !a.startsWith('-'))) {
    if (!known.has(pid)) {
      await stderr(`kill: ${pid}: No such process\n`);
      status = 1;
    }
  }
  return status;
};

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `date [+FORMAT]` in UTC (persist.sys.timezone is UTC on these phones). */
const date: Command = async ({ argv, stdout }) => {
  const d = new Date();
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const fields: Record<string, string> = {
    s: String(Math.floor(d.getTime() / 1000)),
    Y: String(d.getUTCFullYear()),
    m: pad(d.getUTCMonth() + 1),
    d: pad(d.getUTCDate()),
    H: pad(d.getUTCHours()),
    M: pad(d.getUTCMinutes()),
    S: pad(d.getUTCSeconds()),
    N: pad(d.getUTCMilliseconds() * 1_000_000, 9),
    a: DAYS[d.getUTCDay()]!,
    b: MONTHS[d.getUTCMonth()]!,
    Z: 'UTC',
    z: '+0000',
    '%': '%',
  };
  fields.F = `${fields.Y}-${fields.m}-${fields.d}`;
  fields.T = `${fields.H}:${fields.M}:${fields.S}`;
  const format = argv.find((a) => a.startsWith('+'))?.slice(1) ?? '%a %b %e %T %Z %Y';
  const out = format.replace(/%(.)/g, (m, c: string) =>
    c === 'e' ? String(d.getUTCDate()).padStart(2) : (fields[c] ?? m),
  );
  await stdout(`${out}\n`);
  return 0;
};

const uname: Command = async ({ argv, device, stdout }) => {
  const machine = device.properties.get('ro.product.cpu.abi') === 'x86_64' ? 'x86_64' : 'aarch64';
  const parts = {
    s: 'Linux',
    n: 'localhost',
    r: '5.10.0-cphone',
    v: '#1 SMP PREEMPT',
    m: machine,
    o: 'Android',
  };
  const flags = argv.slice(1).join('').replace(/-/g, '');
  const wanted = flags.includes('a') ? 'snrvmo' : flags || 's';
  await stdout(
    `${[...wanted]
      .map((f) => parts[f as keyof typeof parts])
      .filter(Boolean)
      .join(' ')}\n`,
  );
  return 0;
};

const quoteArg = (arg: string): string => `'${arg.replace(/'/g, "'\\''")}'`;

/** `env` prints the environment; `env [-i] NAME=value… command` runs a command with it. */
const env: Command = async (ctx) => {
  const args = ctx.argv.slice(1).filter((a) => a !== '-i');
  const assignments = args.filter(
    (a, k) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(a) && args.slice(0, k).every((b) => b.includes('=')),
  );
  const command = args.slice(assignments.length);
  if (command.length > 0)
    return ctx.run(
      [
        ...assignments.map((a) => a.replace(/=(.*)$/s, (_m, v: string) => `=${quoteArg(v)}`)),
        ...command.map(quoteArg),
      ].join(' '),
    );
  const vars = {
    ...ctx.env,
    ...Object.fromEntries(assignments.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)])),
  };
  await ctx.stdout(
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  return 0;
};

const NAMESPACES = ['system', 'secure', 'global'] as const;
const DEFAULT_SETTINGS: Record<string, Record<string, string>> = {
  system: { screen_off_timeout: '60000', screen_brightness: '102', font_scale: '1.0' },
  secure: { android_id: '0123456789abcdef', default_input_method: 'com.android.inputmethod.latin/.LatinIME' },
  global: { adb_enabled: '1', airplane_mode_on: '0', stay_on_while_plugged_in: '0', device_provisioned: '1' },
};

/**
 * `settings get|put|delete|list NAMESPACE [KEY [VALUE]]`. Stored as files under /data/system, so
 * they survive reboots and live on the data volume like Android's settings_*.xml.
 */
const settings: Command = async (ctx) => {
  const [verb, namespace, key, ...value] = ctx.argv.slice(1);
  if (!verb || !namespace || !(NAMESPACES as readonly string[]).includes(namespace)) {
    await ctx.stderr(
      'usage: settings [--user N] get|put|delete|list NAMESPACE [KEY [VALUE]]\n  NAMESPACE is one of {system, secure, global}\n',
    );
    return 1;
  }
  const file = resolvePath(ctx, `/data/system/users/0/settings_${namespace}.json`);
  const fs = ctx.device.fs;
  const stored =
    fs.stat(file)?.type === 'file'
      ? (JSON.parse(Buffer.from(fs.read(file)).toString('utf8')) as Record<string, string>)
      : {};
  const values: Record<string, string> = { ...DEFAULT_SETTINGS[namespace], ...stored };
  const save = (): void => fs.write(file, new TextEncoder().encode(JSON.stringify(values)));
  switch (verb) {
    case 'get':
      await ctx.stdout(`${key !== undefined && key in values ? values[key] : 'null'}\n`);
      return 0;
    case 'put':
      if (key === undefined || value.length === 0) break;
      values[key] = value.join(' ');
      save();
      return 0;
    case 'delete':
      if (key === undefined) break;
      delete values[key];
      save();
      await ctx.stdout('Deleted 1 rows\n');
      return 0;
    case 'list':
      await ctx.stdout(
        Object.entries(values)
          .sort()
          .map(([k, v]) => `${k}=${v}\n`)
          .join(''),
      );
      return 0;
  }
  await ctx.stderr(`settings: bad arguments for ${verb}\n`);
  return 1;
};

/** `log [-p v|d|i|w|e|f] [-t TAG] MESSAGE…`: writes to the log buffer. */
const log: Command = async ({ argv, device, stderr }) => {
  let priority: LogPriority = 'I';
  let tag = 'log';
  const words: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '-p') {
      const p = (argv[++i] ?? '').toUpperCase().slice(0, 1);
      if (!'VDIWEF'.includes(p) || p === '') {
        await stderr(`log: bad priority '${argv[i] ?? ''}'\n`);
        return 1;
      }
      priority = p as LogPriority;
    } else if (argv[i] === '-t') tag = argv[++i] ?? tag;
    else words.push(argv[i]!);
  }
  device.logcat.log(priority, tag, words.join(' '));
  return 0;
};

export const systemCommands: ReadonlyMap<string, Command> = new Map([
  ['ps', ps],
  ['pidof', pidof],
  ['kill', kill],
  ['date', date],
  ['uname', uname],
  ['env', env],
  ['printenv', env],
  ['settings', settings],
  ['log', log],
]);
