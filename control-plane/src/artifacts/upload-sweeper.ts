// Upload sweeper: removes staged upload bytes nobody will finalize, and fails open uploads past their
// expire_time. Without it an abandoned upload keeps its file in `<dataDir>/uploads` forever and its
// row stays 'open'.
//
// Every replica sweeps its own staging folder (uploads are staged on the replica that took them,
// see keyed-lock.ts), every 10 minutes by default. A pass:
//  1. marks open uploads past their expire_time 'failed'. The update is conditional on 'open', so
//     several replicas doing it at once, or a finalize that already committed, are unaffected;
//  2. removes each staged file whose upload row is not 'open', is past its expire_time, or is
//     missing — a missing row only once the file is a minute old (see below).
// A client that resumes a swept upload gets FAILED_PRECONDITION from ArtifactService (the upload is
// failed, not open) and starts a new one.
//
// Why a file with no row gets a minute: CreateUpload creates the (empty) file inside the
// transaction that inserts the row, so until that commit the file exists and the row does not. The
// minute keeps the sweeper out of that window. A transaction stuck longer (on a lock) may lose its
// file, which costs nothing: the file is still empty and the first chunk (offset 0) opens it with
// O_CREAT; only an upload with committed bytes needs its file, and that upload's row is committed.
// The agent upload route (agent-upload.ts) stages files with no row at all and removes them itself,
// so only a crash strands one. Its body may stream for up to the HTTP server's request timeout
// (5 minutes by default in Node) and an agent that stalls leaves the file's mtime behind, so its
// files get an hour.
//
// A chunk or finalize running at the instant its upload expires may lose the race (its bytes gone,
// or its conditional update finding the row failed); the service refuses the upload from then on.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { AGENT_STAGING_PREFIX } from './agent-upload.js';
import { createStaging, type Staging } from './staging.js';

export interface UploadSweeperDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Pick<ControlPlaneConfig, 'dataDir'>;
}

export interface UploadSweeperOptions {
  /** How often a pass runs; default 10 minutes. */
  readonly intervalMs?: number;
  /** A staged file with no upload row is kept until it is this old; default 1 minute. */
  readonly orphanGraceMs?: number;
  /** The same for an agent upload's staged file; default 1 hour. */
  readonly agentGraceMs?: number;
}

export interface SweepResult {
  /** Open uploads past their expire_time that this pass marked failed. */
  readonly failed: string[];
  /** Names of the staged files this pass removed (an upload id, or an agent upload's file). */
  readonly removed: string[];
}

/** Upload ids looked up per query. */
const BATCH = 500;

export class UploadSweeper {
  readonly #deps: UploadSweeperDeps;
  readonly #log: Logger;
  readonly #staging: Staging;
  readonly #orphanGraceMs: number;
  readonly #agentGraceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SweepResult | undefined> | undefined;

  constructor(deps: UploadSweeperDeps, options: UploadSweeperOptions = {}) {
    this.#deps = deps;
    this.#log = deps.logger.child({ module: 'upload-sweeper' });
    this.#staging = createStaging(deps.config.dataDir);
    this.#orphanGraceMs = options.orphanGraceMs ?? 60_000;
    this.#agentGraceMs = options.agentGraceMs ?? 60 * 60_000;
    this.#timer = setInterval(
      () => {
        if (!this.#running) this.#running = this.tick().finally(() => (this.#running = undefined));
      },
      options.intervalMs ?? 10 * 60_000,
    );
    this.#timer.unref();
  }

  /** One pass as the timer runs it: a failure is logged, and the next pass tries again. */
  async tick(): Promise<SweepResult | undefined> {
    try {
      return await this.sweep();
    } catch (err) {
      this.#log.warn({ err }, 'upload sweep failed');
      return undefined;
    }
  }

  /** One pass: fail expired open uploads, then remove the staged files no upload needs. */
  async sweep(): Promise<SweepResult> {
    const { db, clock } = this.#deps;
    const now = clock.now();
    // `<=` as in ArtifactService: an upload it would refuse as expired is one this fails.
    const failed = await db
      .updateTable('upload')
      .set({ state: 'failed' })
      .where('state', '=', 'open')
      .where('expire_time', '<=', now)
      .returning('id')
      .execute();

    const names = await this.#stagedFiles();
    const removed: string[] = [];
    for (let i = 0; i < names.length; i += BATCH) {
      const batch = names.slice(i, i + BATCH);
      const rows = await db
        .selectFrom('upload')
        .select(['id', 'state', 'expire_time'])
        .where('id', 'in', batch)
        .execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const name of batch) {
        const row = byId.get(name);
        const remove = row
          ? row.state !== 'open' || row.expire_time.getTime() <= now.getTime()
          : await this.#olderThan(
              name,
              name.startsWith(AGENT_STAGING_PREFIX) ? this.#agentGraceMs : this.#orphanGraceMs,
              now,
            );
        if (!remove) continue;
        await this.#staging.remove(name);
        removed.push(name);
      }
    }

    const result = { failed: failed.map((r) => r.id), removed };
    if (result.failed.length > 0 || removed.length > 0) {
      this.#log.info(
        { failedCount: result.failed.length, removedCount: removed.length, ...result },
        'uploads swept',
      );
    }
    return result;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  async #stagedFiles(): Promise<string[]> {
    const entries = await readdir(this.#staging.dir, { withFileTypes: true }).catch((error: unknown) => {
      // No upload was ever staged on this replica.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    });
    return entries.filter((e) => e.isFile()).map((e) => e.name);
  }

  /** Whether the file was last written more than `graceMs` before `now`; false if it is gone. */
  async #olderThan(name: string, graceMs: number, now: Date): Promise<boolean> {
    try {
      const { mtimeMs } = await stat(join(this.#staging.dir, name));
      return now.getTime() - mtimeMs > graceMs;
    } catch (error) {
      // Finalized or failed (and removed) since the listing.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }
}
