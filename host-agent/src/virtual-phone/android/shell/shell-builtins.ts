import { posix } from 'node:path';
import {
  FunctionReturn,
  LoopControl,
  ShellExit,
  type ShellInterpreter,
  type ShellIo,
} from './interpreter.js';
import { evaluateTest, TestError } from './test-expression.js';

/** A command the shell runs itself because it reads or changes the shell's own state. */
export type Builtin = (shell: ShellInterpreter, argv: string[], io: ShellIo) => Promise<number>;

const encoder = new TextEncoder();
const say = (sink: ShellIo['stdout'], text: string): Promise<void> => sink(encoder.encode(text));

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export A=b C` / `local …` / `readonly …`: assign, and for export mark for children. */
const declare =
  (exporting: boolean): Builtin =>
  async (shell, argv, io) => {
    const { vars, exported } = shell.state;
    if (argv.length === 1 || argv[1] === '-p') {
      for (const name of [...exported].sort()) {
        if (vars.has(name)) await say(io.stdout, `export ${name}=${quote(vars.get(name)!)}\n`);
      }
      return 0;
    }
    let status = 0;
    for (const arg of argv.slice(1).filter((a) => !a.startsWith('-'))) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg : arg.slice(0, eq);
      if (!NAME.test(name)) {
        await say(io.stderr, `/system/bin/sh: ${argv[0]}: ${name}: is not an identifier\n`);
        status = 1;
        continue;
      }
      if (eq !== -1) vars.set(name, arg.slice(eq + 1));
      if (exporting) exported.add(name);
    }
    return status;
  };

function quote(value: string): string {
  return /^[A-Za-z0-9_./:=,+-]*$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

const loopControl =
  (kind: 'break' | 'continue'): Builtin =>
  async (_shell, argv) => {
    throw new LoopControl(kind, Math.max(1, Number.parseInt(argv[1] ?? '1', 10) || 1));
  };

const test: Builtin = async (shell, argv, io) => {
  let args = argv.slice(1);
  if (argv[0] === '[') {
    if (args.at(-1) !== ']') {
      await say(io.stderr, '/system/bin/sh: [: missing ]\n');
      return 2;
    }
    args = args.slice(0, -1);
  }
  try {
    return evaluateTest(args, shell.fs, (p) => shell.resolve(p)) ? 0 : 1;
  } catch (error) {
    if (!(error instanceof TestError)) throw error;
    await say(io.stderr, `/system/bin/sh: ${argv[0]}: ${error.message}\n`);
    return 2;
  }
};

/** `read [-r] [-p prompt] name…`: one line of stdin, split over the names. */
const read: Builtin = async (shell, argv, io) => {
  const names: string[] = [];
  let raw = false;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '-r') raw = true;
    else if (argv[i] === '-p') await say(io.stderr, argv[++i] ?? '');
    else names.push(argv[i]!);
  }
  const bytes: Uint8Array[] = [];
  let ended = true;
  for (let chunk = await io.stdin.read(); chunk; chunk = await io.stdin.read()) {
    const newline = chunk.indexOf(10);
    if (newline === -1) {
      bytes.push(chunk);
      continue;
    }
    bytes.push(chunk.subarray(0, newline));
    if (newline + 1 < chunk.byteLength) io.stdin.unread(chunk.subarray(newline + 1));
    ended = false;
    break;
  }
  let line = Buffer.concat(bytes).toString('utf8');
  if (!raw) line = line.replace(/\\(.)/g, '$1');
  const targets = names.length ? names : ['REPLY'];
  const fields = line.trim().split(/[ \t]+/);
  targets.forEach((name, k) => {
    const value = k === targets.length - 1 ? fields.slice(k).join(' ') : (fields[k] ?? '');
    shell.state.vars.set(name, value);
  });
  return ended && line === '' ? 1 : 0;
};

/** `command -v name` / `type name` / `which name`: where a program is, or that it is built in. */
const locate: Builtin = async (shell, argv, io) => {
  const names = argv.slice(1).filter((a) => !a.startsWith('-'));
  if (argv[0] === 'command' && !argv.includes('-v') && !argv.includes('-V')) {
    return names.length ? shell.execute(argv.slice(1), io) : 0;
  }
  let status = 0;
  for (const name of names) {
    const builtin = shellBuiltins.has(name) || shell.state.functions.has(name);
    const program = shell.commands.has(posix.basename(name));
    if (!builtin && !program) {
      if (argv[0] === 'type') await say(io.stderr, `${name} not found\n`);
      status = 1;
    } else if (argv[0] === 'type') {
      await say(io.stdout, builtin ? `${name} is a shell builtin\n` : `${name} is /system/bin/${name}\n`);
    } else if (builtin && argv[0] === 'command') await say(io.stdout, `${name}\n`);
    else if (program) await say(io.stdout, `/system/bin/${posix.basename(name)}\n`);
    else status = 1;
  }
  return status;
};

export const shellBuiltins: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ['export', declare(true)],
  ['local', declare(false)],
  ['readonly', declare(false)],
  [
    'unset',
    async (shell, argv) => {
      for (const name of argv.slice(1).filter((a) => !a.startsWith('-'))) {
        shell.state.vars.delete(name);
        shell.state.functions.delete(name);
      }
      return 0;
    },
  ],
  [
    'cd',
    async (shell, argv, io) => {
      const target = shell.resolve(argv[1] ?? shell.state.vars.get('HOME') ?? '/');
      if (shell.fs.stat(target)?.type !== 'dir') {
        await say(io.stderr, `/system/bin/sh: cd: ${target} - No such file or directory\n`);
        return 2;
      }
      shell.state.cwd = target;
      shell.state.vars.set('PWD', target);
      return 0;
    },
  ],
  [
    'pwd',
    async (shell, _argv, io) => {
      await say(io.stdout, `${shell.state.cwd}\n`);
      return 0;
    },
  ],
  [
    // `exec cmd …` replaces the shell: when the program ends, so does the shell (adb's logcat).
    'exec',
    async (shell, argv, io) => {
      if (argv.length === 1) return 0;
      throw new ShellExit(await shell.execute(argv.slice(1), io));
    },
  ],
  [
    'exit',
    async (shell, argv) => {
      throw new ShellExit(argv[1] === undefined ? shell.state.status : Number.parseInt(argv[1], 10) & 0xff);
    },
  ],
  [
    'return',
    async (shell, argv) => {
      throw new FunctionReturn(
        argv[1] === undefined ? shell.state.status : Number.parseInt(argv[1], 10) & 0xff,
      );
    },
  ],
  ['break', loopControl('break')],
  ['continue', loopControl('continue')],
  [
    'shift',
    async (shell, argv) => {
      shell.state.positional.splice(0, Number.parseInt(argv[1] ?? '1', 10) || 1);
      return 0;
    },
  ],
  [
    'set',
    async (shell, argv) => {
      // Options (-e, -x …) are accepted and ignored; `set -- a b` sets the positional parameters.
      const dashes = argv.indexOf('--');
      if (dashes !== -1) shell.state.positional = argv.slice(dashes + 1);
      return 0;
    },
  ],
  ['eval', async (shell, argv, io) => shell.runScript(argv.slice(1).join(' '), io)],
  [
    '.',
    async (shell, argv, io) => {
      const file = argv[1] ?? '';
      const entry = shell.fs.stat(shell.resolve(file));
      if (entry?.type !== 'file') {
        await say(io.stderr, `/system/bin/sh: .: ${file}: not found\n`);
        return 1;
      }
      return shell.runScript(Buffer.from(entry.data).toString('utf8'), io);
    },
  ],
  [':', async () => 0],
  ['test', test],
  ['[', test],
  ['read', read],
  ['command', locate],
  ['type', locate],
  ['which', locate],
]);
