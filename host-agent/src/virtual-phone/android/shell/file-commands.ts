import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { fileSize } from '../file-system.js';
import { type Command, type CommandContext, resolvePath } from './command.js';
import { options } from './text-commands.js';

async function missing(ctx: CommandContext, path: string): Promise<number> {
  await ctx.stderr(`${posix.basename(ctx.argv[0]!)}: ${path}: No such file or directory\n`);
  return 1;
}

/** Copies (or moves) files and, with -r, directories; a directory target takes the source's name. */
const copy =
  (move: boolean): Command =>
  async (ctx) => {
    const { flags, rest } = options(ctx.argv, '');
    const fs = ctx.device.fs;
    if (rest.length < 2) {
      await ctx.stderr(`usage: ${ctx.argv[0]} [-r] SOURCE... DEST\n`);
      return 1;
    }
    const dest = resolvePath(ctx, rest.at(-1)!);
    const intoDir = fs.stat(dest)?.type === 'dir';
    for (const source of rest.slice(0, -1)) {
      const from = resolvePath(ctx, source);
      const entry = fs.stat(from);
      if (!entry) return missing(ctx, source);
      const to = intoDir ? posix.join(dest, posix.basename(from)) : dest;
      if (entry.type === 'file') fs.write(to, entry.data, { mode: entry.mode });
      else {
        if (!move && !flags.has('r') && !flags.has('R') && !flags.has('a')) {
          await ctx.stderr(`cp: ${source}: Is a directory (use -r)\n`);
          return 1;
        }
        copyTree(ctx, from, to);
      }
      if (move) fs.remove(from, { recursive: true });
    }
    return 0;
  };

function copyTree(ctx: CommandContext, from: string, to: string): void {
  const fs = ctx.device.fs;
  fs.mkdirs(to);
  for (const { name, entry } of fs.list(from)) {
    if (entry.type === 'file') fs.write(posix.join(to, name), entry.data, { mode: entry.mode });
    else copyTree(ctx, posix.join(from, name), posix.join(to, name));
  }
}

const chmod: Command = async (ctx) => {
  const [mode, ...paths] = ctx.argv.slice(1).filter((a) => a !== '-R');
  if (mode === undefined || !/^[0-7]{3,4}$/.test(mode)) {
    await ctx.stderr(`chmod: bad mode '${mode ?? ''}' (octal modes only)\n`);
    return 1;
  }
  for (const path of paths) {
    const entry = ctx.device.fs.stat(resolvePath(ctx, path));
    if (!entry) return missing(ctx, path);
    entry.mode = Number.parseInt(mode, 8);
    if (entry.type === 'file') ctx.device.fs.write(resolvePath(ctx, path), entry.data, { mode: entry.mode });
  }
  return 0;
};

const touch: Command = async (ctx) => {
  for (const path of ctx.argv.slice(1).filter((a) => !a.startsWith('-'))) {
    const full = resolvePath(ctx, path);
    const entry = ctx.device.fs.stat(full);
    if (entry?.type === 'dir') entry.mtime = Math.floor(Date.now() / 1000);
    else ctx.device.fs.write(full, entry?.data ?? new Uint8Array(0), entry ? { mode: entry.mode } : {});
  }
  return 0;
};

/** `stat [-c FORMAT] FILE…` with toybox's %n %s %a %A %F %Y %U %G. */
const stat: Command = async (ctx) => {
  const { values, rest } = options(ctx.argv, 'c');
  for (const path of rest) {
    const entry = ctx.device.fs.stat(resolvePath(ctx, path));
    if (!entry) return missing(ctx, path);
    const type = entry.type === 'dir' ? 'directory' : 'regular file';
    const size = fileSize(entry);
    const format = values.get('c');
    if (format !== undefined) {
      const out = format.replace(/%([nsaAFYUGy])/g, (_m, c: string) =>
        c === 'n'
          ? path
          : c === 's'
            ? String(size)
            : c === 'a'
              ? entry.mode.toString(8)
              : c === 'F'
                ? type
                : c === 'Y'
                  ? String(entry.mtime)
                  : c === 'U' || c === 'G'
                    ? 'root'
                    : c === 'y'
                      ? new Date(entry.mtime * 1000).toISOString()
                      : `${entry.type === 'dir' ? 'd' : '-'}${entry.mode.toString(8)}`,
      );
      await ctx.stdout(`${out}\n`);
    } else {
      await ctx.stdout(
        `  File: ${path}\n  Size: ${size}\t Blocks: ${Math.ceil(size / 512)}\t IO Block: 4096\t${type}\nAccess: (0${entry.mode.toString(8)})  Uid: (    0/    root)   Gid: (    0/    root)\nModify: ${new Date(entry.mtime * 1000).toISOString()}\n`,
      );
    }
  }
  return 0;
};

/** `md5sum` / `sha1sum` / `sha256sum` of files or stdin. */
const digest =
  (algorithm: string): Command =>
  async (ctx) => {
    const files = ctx.argv.slice(1).filter((a) => !a.startsWith('-'));
    for (const file of files.length ? files : ['-']) {
      const data = file === '-' ? await ctx.stdin.readAll() : ctx.device.fs.stat(resolvePath(ctx, file));
      if (data === undefined || ('type' in data && data.type !== 'file')) return missing(ctx, file);
      const bytes = 'type' in data ? data.data : data;
      await ctx.stdout(`${createHash(algorithm).update(bytes).digest('hex')}  ${file}\n`);
    }
    return 0;
  };

const df: Command = async ({ stdout }) => {
  await stdout(
    'Filesystem      1K-blocks    Used Available Use% Mounted on\n' +
      '/dev/root         2031440 1562344    452712  78% /\n' +
      '/dev/block/dm-0   8191416  412345   7762687   6% /data\n' +
      '/dev/fuse         8191416  412345   7762687   6% /storage/emulated\n',
  );
  return 0;
};

const dirname: Command = async ({ argv, stdout }) => {
  await stdout(`${posix.dirname(argv[1] ?? '.')}\n`);
  return 0;
};

export const fileCommands: ReadonlyMap<string, Command> = new Map([
  ['cp', copy(false)],
  ['mv', copy(true)],
  ['chmod', chmod],
  ['touch', touch],
  ['stat', stat],
  ['md5sum', digest('md5')],
  ['sha1sum', digest('sha1')],
  ['sha256sum', digest('sha256')],
  ['df', df],
  ['dirname', dirname],
]);
