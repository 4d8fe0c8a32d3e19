// PostgreSQL servers of the drills' own: initdb into a temporary folder, pg_ctl on a free loopback
// port, sockets in that folder. Nothing here touches the machine's main cluster. The server runs as
// the `postgres` user (initdb refuses root); when this process is not root it runs as itself.
import { execFile } from 'node:child_process';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
export const PG_BIN = process.env.CPHONE_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A loopback port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

let owner: { uid: number; gid: number } | undefined;

/** uid/gid the servers run as: `postgres` when this process is root, else this process's own. */
async function serverOwner(): Promise<{ uid: number; gid: number }> {
  if (owner) return owner;
  if (process.getuid?.() !== 0) {
    owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return owner;
  }
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no postgres user on this machine');
  owner = { uid, gid };
  return owner;
}

/** Runs a PostgreSQL binary as the server's user. */
export async function pgBin(name: string, args: string[], options: { timeoutMs?: number } = {}) {
  const path = join(PG_BIN, name);
  const asRoot = process.getuid?.() === 0;
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
  try {
    return await run(file, argv, { timeout: options.timeoutMs ?? 120_000, maxBuffer: 16 << 20 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${name} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** A folder the server's user owns (mode 0700), under a fresh temporary folder. */
export async function serverDir(parent: string, name: string): Promise<string> {
  const dir = join(parent, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { uid, gid } = await serverOwner();
  await chown(dir, uid, gid);
  return dir;
}

/** Gives `path` and everything under it to the server's user (after copying files in as root). */
export async function chownR(path: string): Promise<void> {
  const { uid, gid } = await serverOwner();
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownR(child);
    else await chown(child, uid, gid);
  }
}

/** A temporary folder for one drill, readable by the server's user (its sub-folders hold data dirs). */
export async function drillDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const { uid, gid } = await serverOwner();
  await chown(dir, uid, gid);
  return dir;
}

export interface ServerOptions {
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
}

/** One PostgreSQL server: its data dir, port and process. */
export class PgServer {
  constructor(
    readonly dataDir: string,
    readonly port: number,
    /** Folder for the unix socket and the log (not inside the data dir, which may be destroyed). */
    readonly runDir: string,
  ) {}

  /** initdb (trust auth, user postgres) with `settings` appended to postgresql.conf. */
  static async init(parent: string, name: string, options: ServerOptions = {}): Promise<PgServer> {
    const dataDir = await serverDir(parent, name);
    const runDir = await serverDir(parent, `${name}-run`);
    await pgBin('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    const server = new PgServer(dataDir, await freePort(), runDir);
    await server.configure(options.settings ?? {});
    return server;
  }

  /** Appends settings to postgresql.auto.conf (later lines win). */
  async configure(settings: Record<string, string | number>): Promise<void> {
    const lines = Object.entries(settings).map(([k, v]) =>
      typeof v === 'number' ? `${k} = ${v}` : `${k} = '${v.replaceAll("'", "''")}'`,
    );
    const path = join(this.dataDir, 'postgresql.auto.conf');
    const before = await readFile(path, 'utf8').catch(() => '');
    await writeFile(path, `${before}${lines.join('\n')}\n`);
    const { uid, gid } = await serverOwner();
    await chown(path, uid, gid);
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.runDir}`;
    await pgBin(
      'pg_ctl',
      ['-D', this.dataDir, '-o', options, '-l', join(this.runDir, 'server.log'), '-w', '-t', '120', 'start'],
      {
        timeoutMs: 130_000,
      },
    );
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await pgBin('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', 'stop']).catch(() => undefined);
  }

  /** The postmaster's pid, from postmaster.pid; undefined when it is not running. */
  async pid(): Promise<number | undefined> {
    const text = await readFile(join(this.dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
    const pid = Number(text?.split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /**
   * kill -9 of the postmaster and every process it started, at once: the machine is gone as far
   * as the clients can tell (their sockets are reset, nothing is flushed or handed over).
   */
  async kill9(): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) throw new Error(`no postmaster.pid in ${this.dataDir}`);
    const children = await childrenOf(pid);
    for (const p of [pid, ...children]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Promotes a standby (pg_ctl promote, waits until it accepts writes). */
  async promote(): Promise<void> {
    await pgBin('pg_ctl', ['-D', this.dataDir, '-w', '-t', '60', 'promote'], { timeoutMs: 70_000 });
  }

  async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], database = 'postgres') {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Removes the data dir (as a disk or volume lost). */
  async destroy(): Promise<void> {
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

async function childrenOf(pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
