// A phone's user data kept in a host folder, standing in for Redroid's /data volume. The folder is
// /data itself (/data/local/tmp/x is <dir>/local/tmp/x); /sdcard lives in <dir>/media/0 as on
// Android; the package list is <dir>/system/packages.json and the persist.* properties
// <dir>/property/persistent_properties.json. Read once at start, then every change is written
// through in order, each file as temp + rename, so a crash leaves the old or the new file.
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { AndroidDevice } from './android-device.js';
import type { FsChange } from './file-system.js';
import type { InstalledPackage } from './package-manager.js';

const PACKAGES = 'system/packages.json';
const PROPERTIES = 'property/persistent_properties.json';
const SDCARD = 'media/0';
const TMP_SUFFIX = '.cphone-tmp';
const PERSIST_PREFIX = 'persist.';

interface SavedFile {
  readonly path: string;
  readonly data: Uint8Array;
  readonly mode: number;
  readonly mtime: number;
}

interface SavedPackage extends Omit<InstalledPackage, 'installedAt'> {
  readonly installedAt: string;
}

/** What a data folder held when the phone started. */
export interface SavedData {
  readonly dirs: string[];
  readonly files: SavedFile[];
  readonly packages: InstalledPackage[];
  readonly properties: Record<string, string>;
}

/** The host path of a phone path that persists, or undefined for one that lives in memory only. */
export function hostPathOf(dataDir: string, phonePath: string): string | undefined {
  if (phonePath === '/data') return dataDir;
  if (phonePath.startsWith('/data/')) return join(dataDir, phonePath.slice('/data/'.length));
  if (phonePath === '/sdcard') return join(dataDir, SDCARD);
  if (phonePath.startsWith('/sdcard/')) return join(dataDir, SDCARD, phonePath.slice('/sdcard/'.length));
  return undefined;
}

function phonePathOf(relative: string): string {
  if (relative === SDCARD) return '/sdcard';
  if (relative.startsWith(`${SDCARD}/`)) return `/sdcard/${relative.slice(SDCARD.length + 1)}`;
  return `/data/${relative}`;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads a data folder (made if missing). */
export async function readDataVolume(dataDir: string): Promise<SavedData> {
  await mkdir(dataDir, { recursive: true });
  const dirs: string[] = [];
  const files: SavedFile[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(join(dataDir, relative), { withFileTypes: true })) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        dirs.push(phonePathOf(rel));
        await walk(rel);
      } else if (entry.isFile() && rel !== PACKAGES && rel !== PROPERTIES && !rel.endsWith(TMP_SUFFIX)) {
        const path = join(dataDir, rel);
        const info = await stat(path);
        files.push({
          path: phonePathOf(rel),
          data: await readFile(path),
          mode: info.mode & 0o7777,
          mtime: Math.floor(info.mtimeMs / 1000),
        });
      }
    }
  };
  await walk('');
  const packages = (await readJson<SavedPackage[]>(join(dataDir, PACKAGES))) ?? [];
  return {
    dirs,
    files,
    packages: packages.map((p) => ({ ...p, installedAt: new Date(p.installedAt) })),
    properties: (await readJson<Record<string, string>>(join(dataDir, PROPERTIES))) ?? {},
  };
}

async function writeAtomic(path: string, data: Uint8Array | string, mtime?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}${TMP_SUFFIX}`;
  await writeFile(tmp, data);
  if (mtime !== undefined) await utimes(tmp, mtime, mtime);
  await rename(tmp, path);
}

/**
 * Puts saved data into a freshly made device, then writes every later change of its /data,
 * /sdcard, packages and persist.* properties to the folder. `flush()` resolves once all changes
 * so far are on disk (the phone awaits it on close).
 */
export class DataVolume {
  readonly #dataDir: string;
  readonly #device: AndroidDevice;
  readonly #logger: Logger;
  #queue: Promise<void> = Promise.resolve();

  constructor(dataDir: string, device: AndroidDevice, saved: SavedData, logger: Logger) {
    this.#dataDir = dataDir;
    this.#device = device;
    this.#logger = logger.child({ dataDir });
    for (const dir of saved.dirs) device.fs.mkdirs(dir);
    for (const file of saved.files) device.fs.write(file.path, file.data, file);
    device.packages.restore(saved.packages);
    for (const [key, value] of Object.entries(saved.properties)) {
      if (key.startsWith(PERSIST_PREFIX)) device.properties.set(key, value);
    }
    device.fs.onChange = (change) => this.#onFsChange(change);
    device.events.on('package', () => this.#savePackages());
    device.properties.onSet = (key) => {
      if (key.startsWith(PERSIST_PREFIX)) this.#saveProperties();
    };
  }

  flush(): Promise<void> {
    return this.#queue;
  }

  #enqueue(what: string, operation: () => Promise<void>): void {
    this.#queue = this.#queue.then(operation).catch((err: unknown) => {
      // The phone keeps running on its memory; only this change misses the disk.
      this.#logger.warn({ err, what }, 'writing phone data failed');
    });
  }

  #onFsChange(change: FsChange): void {
    const host = hostPathOf(this.#dataDir, change.path);
    if (host === undefined) return;
    switch (change.kind) {
      case 'mkdir':
        this.#enqueue(change.path, () => mkdir(host, { recursive: true }).then(() => undefined));
        return;
      case 'write': {
        const { data, mtime } = change.entry;
        this.#enqueue(change.path, () => writeAtomic(host, data, mtime));
        return;
      }
      case 'remove':
        this.#enqueue(change.path, () => rm(host, { recursive: true, force: true }));
        return;
    }
  }

  #savePackages(): void {
    const saved: SavedPackage[] = this.#device.packages
      .userPackages()
      .map((p) => ({ ...p, installedAt: p.installedAt.toISOString() }));
    this.#enqueue(PACKAGES, () => writeAtomic(join(this.#dataDir, PACKAGES), JSON.stringify(saved, null, 2)));
  }

  #saveProperties(): void {
    const saved = Object.fromEntries(this.#device.properties.entries(PERSIST_PREFIX));
    this.#enqueue(PROPERTIES, () =>
      writeAtomic(join(this.#dataDir, PROPERTIES), JSON.stringify(saved, null, 2)),
    );
  }
}
