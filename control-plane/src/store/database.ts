import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGliteDialect } from './pglite-dialect.js';

export type DatabaseKind = 'postgres' | 'pglite';

export interface OpenDatabaseOptions {
  /** A postgres:// URL; when absent the embedded PGlite is used. */
  url?: string | undefined;
  /** Folder for PGlite's files; in-memory when absent. */
  pgliteDir?: string | undefined;
  /** Pool size for PostgreSQL (default 10). */
  poolSize?: number;
}

export interface OpenDatabase<DB> {
  db: Kysely<DB>;
  kind: DatabaseKind;
  close(): Promise<void>;
}

// int8 (bigint, count(*)) and numeric arrive as strings from PostgreSQL. Every int8 the store keeps
// (sequences, byte counts, milliseconds) stays far below 2^53, so both drivers parse it to a number
// and the two dialects return the same shapes.
const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);
pg.types.setTypeParser(INT8_OID, parseInt8);

/** Opens PostgreSQL (when a URL is given) or the embedded PGlite. */
export async function openDatabase<DB>(options: OpenDatabaseOptions = {}): Promise<OpenDatabase<DB>> {
  if (options.url) {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  // PGlite makes its own folder but not the folders above it.
  if (options.pgliteDir) await mkdir(dirname(options.pgliteDir), { recursive: true, mode: 0o700 });
  const pglite = new PGlite(options.pgliteDir, { parsers: { [INT8_OID]: parseInt8 } });
  await pglite.waitReady;
  const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) });
  return { db, kind: 'pglite', close: () => db.destroy() };
}
