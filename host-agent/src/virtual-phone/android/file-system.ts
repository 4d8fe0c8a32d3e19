import { posix } from 'node:path';

export interface FileEntry {
  readonly type: 'file';
  data: Uint8Array;
  mode: number;
  /** seconds since the epoch */
  mtime: number;
}

export interface DirEntry {
  readonly type: 'dir';
  mode: number;
  mtime: number;
}

export type FsEntry = FileEntry | DirEntry;

/** A change to the tree, for a persistence layer to mirror. */
export type FsChange =
  | { readonly kind: 'mkdir'; readonly path: string }
  | { readonly kind: 'write'; readonly path: string; readonly entry: FileEntry }
  | { readonly kind: 'remove'; readonly path: string };

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export class FsError extends Error {
  override readonly name = 'FsError';
  constructor(
    readonly path: string,
    readonly reason:
      | 'No such file or directory'
      | 'Is a directory'
      | 'Not a directory'
      | 'Directory not empty',
    readonly errno: number,
  ) {
    super(`${path}: ${reason}`);
  }
}

const ENOENT = 2;
const ENOTDIR = 20;
const EISDIR = 21;
const ENOTEMPTY = 39;

const now = (): number => Math.floor(Date.now() / 1000);

/** A small in-memory file system: enough for sync push/pull, `ls`, `cat`, `rm` and APK installs. */
export class MemoryFileSystem {
  readonly #entries = new Map<string, FsEntry>();
  /** Told of every change after it is made (normalized paths); unset means nobody listens. */
  onChange: ((change: FsChange) => void) | undefined;

  constructor(directories: readonly string[] = ['/sdcard', '/data/local/tmp', '/system/bin', '/storage']) {
    this.#entries.set('/', { type: 'dir', mode: 0o755, mtime: now() });
    for (const dir of directories) this.mkdirs(dir);
  }

  static normalize(path: string): string {
    const normal = posix.normalize(posix.join('/', path));
    return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
  }

  stat(path: string): FsEntry | undefined {
    return this.#entries.get(MemoryFileSystem.normalize(path));
  }

  mkdirs(path: string): void {
    const normal = MemoryFileSystem.normalize(path);
    let current = '';
    for (const part of normal.split('/').filter(Boolean)) {
      current += `/${part}`;
      const entry = this.#entries.get(current);
      if (entry?.type === 'file') throw new FsError(current, 'Not a directory', ENOTDIR);
      if (!entry) {
        this.#entries.set(current, { type: 'dir', mode: 0o771, mtime: now() });
        this.onChange?.({ kind: 'mkdir', path: current });
      }
    }
  }

  read(path: string): Uint8Array {
    const entry = this.stat(path);
    if (!entry) throw new FsError(path, 'No such file or directory', ENOENT);
    if (entry.type === 'dir') throw new FsError(path, 'Is a directory', EISDIR);
    return entry.data;
  }

  /** Writes a file, creating parent directories (adb's `fixed_push_mkdir` behaviour). */
  write(
    path: string,
    data: Uint8Array,
    { mode = 0o644, mtime = now() }: { mode?: number; mtime?: number } = {},
  ): void {
    const normal = MemoryFileSystem.normalize(path);
    if (this.#entries.get(normal)?.type === 'dir') throw new FsError(path, 'Is a directory', EISDIR);
    this.mkdirs(posix.dirname(normal));
    const entry: FileEntry = { type: 'file', data, mode: mode & 0o7777, mtime };
    this.#entries.set(normal, entry);
    this.onChange?.({ kind: 'write', path: normal, entry });
  }

  /** Names directly inside `path`, sorted. */
  list(path: string): { name: string; entry: FsEntry }[] {
    const normal = MemoryFileSystem.normalize(path);
    const dir = this.#entries.get(normal);
    if (!dir) throw new FsError(path, 'No such file or directory', ENOENT);
    if (dir.type !== 'dir') throw new FsError(path, 'Not a directory', ENOTDIR);
    const prefix = normal === '/' ? '/' : `${normal}/`;
    const out: { name: string; entry: FsEntry }[] = [];
    for (const [key, entry] of this.#entries) {
      if (key !== normal && key.startsWith(prefix) && !key.slice(prefix.length).includes('/')) {
        out.push({ name: key.slice(prefix.length), entry });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  remove(path: string, { recursive = false }: { recursive?: boolean } = {}): void {
    const normal = MemoryFileSystem.normalize(path);
    const entry = this.#entries.get(normal);
    if (!entry) throw new FsError(path, 'No such file or directory', ENOENT);
    if (entry.type === 'dir') {
      const children = this.list(normal);
      if (!recursive)
        throw new FsError(
          path,
          children.length ? 'Directory not empty' : 'Is a directory',
          children.length ? ENOTEMPTY : EISDIR,
        );
      for (const key of [...this.#entries.keys()])
        if (key.startsWith(`${normal}/`)) this.#entries.delete(key);
    }
    this.#entries.delete(normal);
    this.onChange?.({ kind: 'remove', path: normal });
  }
}

export function fileMode(entry: FsEntry): number {
  return (entry.type === 'dir' ? S_IFDIR : S_IFREG) | entry.mode;
}

export function fileSize(entry: FsEntry): number {
  return entry.type === 'file' ? entry.data.byteLength : 4096;
}
