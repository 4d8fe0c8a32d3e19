// Test databases: each test file gets a fresh one. With DATABASE_URL set, a uniquely named database
// is created on that server and dropped afterwards; otherwise an in-memory PGlite is used. The same
// suites pass on both.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { type DatabaseKind, type DatabaseSession, openDatabase } from './database.js';

export interface TestDatabase<DB> {
  db: Kysely<DB>;
  kind: DatabaseKind;
  /** The database's name (PostgreSQL) or 'memory' (PGlite). */
  name: string;
  /** The URL of the database (PostgreSQL only), for code that opens its own connections. */
  url: string | undefined;
  /** Opens a session of its own (LISTEN, session-level locks), as OpenDatabase.session does. */
  session(): Promise<DatabaseSession>;
  close(): Promise<void>;
}

/** The kinds a test can run on here: PGlite always, PostgreSQL when DATABASE_URL is set. */
export function availableDatabaseKinds(): DatabaseKind[] {
  return process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];
}

/** The kind the suites use by default: PostgreSQL when DATABASE_URL is set. */
export function defaultDatabaseKind(): DatabaseKind {
  return process.env.DATABASE_URL ? 'postgres' : 'pglite';
}

export interface CreateTestDatabaseOptions<DB> {
  kind?: DatabaseKind;
  /** Runs once on the fresh database, e.g. the migrations. */
  setup?: (db: Kysely<DB>) => Promise<void>;
}

export async function createTestDatabase<DB>(
  options: CreateTestDatabaseOptions<DB> = {},
): Promise<TestDatabase<DB>> {
  const kind = options.kind ?? defaultDatabaseKind();
  let result: TestDatabase<DB>;
  if (kind === 'pglite') {
    const open = await openDatabase<DB>();
    result = { db: open.db, kind, name: 'memory', url: undefined, session: open.session, close: open.close };
  } else {
    const adminUrl = process.env.DATABASE_URL;
    if (!adminUrl) throw new Error('DATABASE_URL is not set: cannot create a PostgreSQL test database');
    const name = `cphone_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const open = await openDatabase<DB>({ url: url.toString(), poolSize: 20 });
    result = {
      db: open.db,
      kind,
      name,
      url: url.toString(),
      session: open.session,
      close: async () => {
        await open.close();
        const dropper = new pg.Client({ connectionString: adminUrl });
        await dropper.connect();
        try {
          // pg's pool reports itself ended before its sockets have closed; a forced drop would
          // kill those closing sessions and surface as an uncaught error, so wait for them first.
          for (let attempt = 0; ; attempt++) {
            try {
              await dropper.query(`drop database if exists ${name}`);
              break;
            } catch (error) {
              if (attempt >= 50) throw error;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
        } finally {
          await dropper.end();
        }
      },
    };
  }
  try {
    await options.setup?.(result.db);
  } catch (error) {
    await result.close();
    throw error;
  }
  return result;
}
