import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Generated, sql } from 'kysely';
import { availableDatabaseKinds, createTestDatabase } from './test-database.js';

interface Db {
  note: { id: Generated<number>; body: string; size: number };
}

for (const kind of availableDatabaseKinds()) {
  describe(`test database on ${kind}`, () => {
    test('gives a fresh, isolated database with working transactions', async () => {
      const first = await createTestDatabase<Db>({
        kind,
        setup: async (db) => {
          await sql`create table note (id serial primary key, body text not null, size int8 not null)`.execute(
            db,
          );
        },
      });
      const second = await createTestDatabase<Db>({ kind });
      try {
        assert.equal(first.kind, kind);
        await first.db
          .insertInto('note')
          .values({ body: 'kept', size: 2 ** 40 })
          .execute();
        await assert.rejects(
          first.db.transaction().execute(async (trx) => {
            await trx.insertInto('note').values({ body: 'rolled back', size: 1 }).execute();
            throw new Error('abort');
          }),
          /abort/,
        );
        const rows = await first.db.selectFrom('note').select(['body', 'size']).execute();
        assert.deepEqual(rows, [{ body: 'kept', size: 2 ** 40 }]);
        const update = await first.db.updateTable('note').set({ body: 'changed' }).executeTakeFirst();
        assert.equal(update.numUpdatedRows, 1n);
        // The second database does not see the first one's table.
        await assert.rejects(sql`select * from note`.execute(second.db));
      } finally {
        await first.close();
        await second.close();
      }
      if (kind === 'postgres') {
        const { Client } = (await import('pg')).default;
        const admin = new Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        const left = await admin.query('select 1 from pg_database where datname = $1', [first.name]);
        await admin.end();
        assert.equal(left.rowCount, 0, `database ${first.name} was dropped`);
      }
    });

    test('serialises concurrent transactions without losing updates', async () => {
      const t = await createTestDatabase<Db>({
        kind,
        setup: async (db) => {
          await sql`create table note (id serial primary key, body text not null, size int8 not null)`.execute(
            db,
          );
          await db.insertInto('note').values({ body: 'counter', size: 0 }).execute();
        },
      });
      try {
        await Promise.all(
          Array.from({ length: 20 }, () =>
            t.db.transaction().execute(async (trx) => {
              const row = await trx
                .selectFrom('note')
                .select('size')
                .where('id', '=', 1)
                .forUpdate()
                .executeTakeFirstOrThrow();
              await trx
                .updateTable('note')
                .set({ size: row.size + 1 })
                .where('id', '=', 1)
                .execute();
            }),
          ),
        );
        const row = await t.db.selectFrom('note').select('size').executeTakeFirstOrThrow();
        assert.equal(row.size, 20);
      } finally {
        await t.close();
      }
    });
  });
}
