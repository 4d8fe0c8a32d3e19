import { ByteQueue, ByteReader } from '../../byte-reader.js';
import { type Command, type CommandContext, resolvePath } from './command.js';

/** Lines of a stream as they arrive (with their newline), so `logcat | grep x` follows live. */
export async function* readLines(reader: ByteReader): AsyncGenerator<string> {
  let pending = '';
  const decoder = new TextDecoder();
  for (let chunk = await reader.read(); chunk; chunk = await reader.read()) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      yield pending.slice(0, newline + 1);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  }
  if (pending) yield pending;
}

/** Splits toybox-style argv into single-letter flags, option values and operands. */
export function options(
  argv: string[],
  withValue: string,
): { flags: Set<string>; values: Map<string, string>; rest: string[] } {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!/^-[A-Za-z0-9]/.test(arg) || rest.length > 0) {
      rest.push(arg);
      continue;
    }
    for (let k = 1; k < arg.length; k++) {
      const flag = arg[k]!;
      if (/\d/.test(flag) && !withValue.includes(flag)) {
        // `head -5` is `head -n 5`
        values.set('n', arg.slice(k));
        break;
      }
      if (withValue.includes(flag)) {
        values.set(flag, arg.slice(k + 1) || (argv[++i] ?? ''));
        break;
      }
      flags.add(flag);
    }
  }
  return { flags, values, rest };
}

/** The named files one after another, or stdin without any (or for `-`). */
export function inputs(ctx: CommandContext, files: string[]): ByteReader[] {
  if (files.length === 0) return [ctx.stdin];
  return files.map((file) => {
    if (file === '-') return ctx.stdin;
    const queue = new ByteQueue();
    queue.push(ctx.device.fs.read(resolvePath(ctx, file)));
    queue.end();
    return new ByteReader(queue);
  });
}

const grep: Command = async (ctx) => {
  const { flags, values, rest } = options(ctx.argv, 'em');
  const pattern = values.get('e') ?? rest.shift();
  if (pattern === undefined) {
    await ctx.stderr('usage: grep [-civnqolwFE] PATTERN [FILE...]\n');
    return 2;
  }
  const source = flags.has('F') ? pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : pattern;
  // Basic regular expressions: \| \( \) \{ \} are the operators, bare ones literal.
  const js =
    flags.has('E') || flags.has('F') || ctx.argv[0] === 'egrep'
      ? source
      : source.replace(/\\([|(){}+?])|([|(){}+?])/g, (_m, op: string, lit: string) => op ?? `\\${lit}`);
  let re: RegExp;
  try {
    re = new RegExp(
      flags.has('w') ? `\\b(?:${js})\\b` : flags.has('x') ? `^(?:${js})$` : js,
      flags.has('i') ? 'i' : '',
    );
  } catch {
    await ctx.stderr(`grep: bad regex '${pattern}'\n`);
    return 2;
  }
  const max = values.has('m') ? Number(values.get('m')) : Number.POSITIVE_INFINITY;
  let matched = 0;
  for (const reader of inputs(ctx, rest)) {
    let number = 0;
    for await (const line of readLines(reader)) {
      number++;
      const text = line.replace(/\n$/, '');
      if (re.test(text) === flags.has('v')) continue;
      matched++;
      if (flags.has('q')) return 0;
      if (!flags.has('c')) {
        const out = flags.has('o') ? `${text.match(re)?.[0] ?? ''}\n` : `${text}\n`;
        await ctx.stdout(flags.has('n') ? `${number}:${out}` : out);
      }
      if (matched >= max) break;
    }
  }
  if (flags.has('c')) await ctx.stdout(`${matched}\n`);
  return matched > 0 ? 0 : 1;
};

const head: Command = async (ctx) => {
  const { values, rest } = options(ctx.argv, 'nc');
  const count = Number.parseInt(values.get('n') ?? '10', 10);
  for (const reader of inputs(ctx, rest)) {
    let n = 0;
    if (count <= 0) continue;
    for await (const line of readLines(reader)) {
      await ctx.stdout(line);
      if (++n >= count) break;
    }
  }
  return 0;
};

const tail: Command = async (ctx) => {
  const { values, rest } = options(ctx.argv, 'nc');
  const spec = values.get('n') ?? '10';
  for (const reader of inputs(ctx, rest)) {
    const lines: string[] = [];
    for await (const line of readLines(reader)) lines.push(line);
    const shown = spec.startsWith('+')
      ? lines.slice(Number(spec.slice(1)) - 1)
      : lines.slice(-Number(spec) || lines.length);
    await ctx.stdout(Number(spec) === 0 ? '' : shown.join(''));
  }
  return 0;
};

const wc: Command = async (ctx) => {
  const { flags, rest } = options(ctx.argv, '');
  const all = !flags.has('l') && !flags.has('w') && !flags.has('c');
  for (const [k, reader] of inputs(ctx, rest).entries()) {
    const data = await reader.readAll();
    const text = Buffer.from(data).toString('utf8');
    const counts: number[] = [];
    if (all || flags.has('l')) counts.push(text.split('\n').length - 1);
    if (all || flags.has('w')) counts.push(text.split(/\s+/).filter(Boolean).length);
    if (all || flags.has('c')) counts.push(data.byteLength);
    const name = rest[k] ? ` ${rest[k]}` : '';
    await ctx.stdout(
      `${counts.map((c) => (counts.length > 1 ? String(c).padStart(7) : String(c))).join(' ')}${name}\n`,
    );
  }
  return 0;
};

const printf: Command = async ({ argv, stdout }) => {
  const format = (argv[1] ?? '').replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\\\/g, '\\');
  const args = argv.slice(2);
  let out = '';
  do {
    out += format.replace(/%([-0-9.]*)([sdxc%])/g, (_m, width: string, conv: string) => {
      if (conv === '%') return '%';
      const arg = args.shift() ?? '';
      const value =
        conv === 'd'
          ? String(Number.parseInt(arg, 10) || 0)
          : conv === 'x'
            ? (Number.parseInt(arg, 10) || 0).toString(16)
            : conv === 'c'
              ? arg.slice(0, 1)
              : arg;
      const n = Number.parseInt(width, 10);
      return Number.isNaN(n)
        ? value
        : n < 0
          ? value.padEnd(-n)
          : value.padStart(n, width.startsWith('0') ? '0' : ' ');
    });
  } while (args.length > 0 && /%[-0-9.]*[sdxc]/.test(format));
  await stdout(out);
  return 0;
};

const sort: Command = async (ctx) => {
  const { flags, rest } = options(ctx.argv, '');
  const lines: string[] = [];
  for (const reader of inputs(ctx, rest))
    for await (const line of readLines(reader)) lines.push(line.replace(/\n$/, ''));
  lines.sort(flags.has('n') ? (a, b) => Number.parseFloat(a) - Number.parseFloat(b) : undefined);
  if (flags.has('r')) lines.reverse();
  const out = flags.has('u') ? [...new Set(lines)] : lines;
  await ctx.stdout(out.map((l) => `${l}\n`).join(''));
  return 0;
};

const cut: Command = async (ctx) => {
  const { values, rest } = options(ctx.argv, 'dfc');
  const delimiter = values.get('d') ?? '\t';
  const fields = (values.get('f') ?? values.get('c') ?? '1').split(',').flatMap((range) => {
    const [from, to] = range.split('-');
    const a = Number(from || 1);
    const b = range.includes('-') ? Number(to || 1e6) : a;
    return Array.from({ length: Math.min(b, 1e4) - a + 1 }, (_, k) => a + k);
  });
  for (const reader of inputs(ctx, rest)) {
    for await (const line of readLines(reader)) {
      const text = line.replace(/\n$/, '');
      const parts = values.has('c') ? [...text] : text.split(delimiter);
      const picked = fields.filter((f) => f <= parts.length).map((f) => parts[f - 1]);
      await ctx.stdout(`${picked.join(values.has('c') ? '' : delimiter)}\n`);
    }
  }
  return 0;
};

const tr: Command = async (ctx) => {
  const { flags, rest } = options(ctx.argv, '');
  const expand = (set: string): string =>
    set.replace(/(.)-(.)/g, (_m, a: string, b: string) =>
      String.fromCharCode(
        ...Array.from({ length: b.charCodeAt(0) - a.charCodeAt(0) + 1 }, (_, k) => a.charCodeAt(0) + k),
      ),
    );
  const from = expand(rest[0] ?? '');
  const to = expand(rest[1] ?? '');
  const text = Buffer.from(await ctx.stdin.readAll()).toString('utf8');
  let out = '';
  for (const c of text) {
    const k = from.indexOf(c);
    if (k === -1) out += c;
    else if (!flags.has('d')) out += to[Math.min(k, to.length - 1)] ?? '';
  }
  await ctx.stdout(out);
  return 0;
};

const tee: Command = async (ctx) => {
  const { flags, rest } = options(ctx.argv, '');
  const chunks: Uint8Array[] = [];
  for (let chunk = await ctx.stdin.read(); chunk; chunk = await ctx.stdin.read()) {
    chunks.push(chunk);
    await ctx.stdout(chunk);
  }
  for (const file of rest) {
    const path = resolvePath(ctx, file);
    const before =
      flags.has('a') && ctx.device.fs.stat(path)?.type === 'file' ? [ctx.device.fs.read(path)] : [];
    ctx.device.fs.write(path, Buffer.concat([...before, ...chunks]));
  }
  return 0;
};

export const textCommands: ReadonlyMap<string, Command> = new Map([
  ['grep', grep],
  ['egrep', grep],
  ['head', head],
  ['tail', tail],
  ['wc', wc],
  ['printf', printf],
  ['sort', sort],
  ['cut', cut],
  ['tr', tr],
  ['tee', tee],
]);
