import { ByteQueue, ByteReader } from '../../byte-reader.js';
import { FsError, type MemoryFileSystem } from '../file-system.js';
import { expandString } from './expand.js';
import type { ShellInterpreter, ShellIo } from './interpreter.js';
import type { Redirect } from './parse.js';

const encoder = new TextEncoder();

/** Applies redirections left to right; a failure prints as sh does and gives status 1. */
export async function applyRedirects(
  shell: ShellInterpreter,
  redirects: readonly Redirect[],
  io: ShellIo,
): Promise<ShellIo | number> {
  const fds = new Map<number, ShellIo['stdout']>([
    [1, io.stdout],
    [2, io.stderr],
  ]);
  let { stdin } = io;
  for (const r of redirects) {
    const target = await expandString(r.target, shell);
    if ((r.op === '>&' || r.op === '<&') && /^\d+$/.test(target)) {
      const from = Number(target);
      if (r.fd === 0 || from === 0) continue;
      const sink = fds.get(from);
      if (sink) fds.set(r.fd, sink);
      continue;
    }
    if (r.op === '>&' && target === '-') continue;
    const path = target === '/dev/null' ? undefined : shell.resolve(target);
    if (r.op === '<' || r.op === '<&') {
      const queue = new ByteQueue();
      if (path !== undefined) {
        const entry = shell.fs.stat(path);
        if (entry?.type !== 'file') {
          await io.stderr(
            encoder.encode(`/system/bin/sh: can't open ${target}: No such file or directory\n`),
          );
          return 1;
        }
        queue.push(entry.data);
      }
      queue.end();
      stdin = new ByteReader(queue);
      continue;
    }
    const sink = path === undefined ? async () => {} : fileSink(shell.fs, path, r.op === '>>');
    if (typeof sink === 'string') {
      await io.stderr(encoder.encode(`/system/bin/sh: can't create ${target}: ${sink}\n`));
      return 1;
    }
    if (r.op === '&>' || (r.op === '>&' && r.fd === 1)) fds.set(2, sink);
    fds.set(r.fd, sink);
  }
  return { stdin, stdout: fds.get(1)!, stderr: fds.get(2)!, signal: io.signal };
}

/** A file opened for writing (truncated unless appending); each write goes straight through. */
function fileSink(fs: MemoryFileSystem, path: string, append: boolean): ShellIo['stdout'] | string {
  const entry = fs.stat(path);
  if (entry?.type === 'dir') return 'Is a directory';
  try {
    if (!append || !entry) fs.write(path, new Uint8Array(0));
  } catch (error) {
    if (error instanceof FsError) return error.reason;
    throw error;
  }
  return async (data) => {
    const before = fs.stat(path);
    fs.write(path, before?.type === 'file' ? Buffer.concat([before.data, data]) : data);
  };
}
