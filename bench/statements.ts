// `npm run bench -- statements`: closing one month's statements for 1,000 customer tenants (and
// their 10 resellers) through the statement closer's path, on a scratch PostgreSQL database
// (DATABASE_URL, else the local server's). Options: --tenants N --devices N --every MINUTES.
// Prints the figure and a JSON line; never asserts a time.
import { createTestStore } from '@cphone/control-plane/testing';
import { arg } from './_args.js';
import { closeMonthBench } from './_close-month.js';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const store = await createTestStore({ kind: 'postgres' });
try {
  const result = await closeMonthBench(store.db, {
    tenants: arg('tenants', 1000),
    devicesPerTenant: arg('devices', 4),
    sampleEveryMinutes: arg('every', 60),
    log: (line) => console.log(line),
  });
  console.log(`close_month_s ${result.close_month_s} for ${result.statements} statements`);
  console.log(
    JSON.stringify({
      close_month_s: result.close_month_s,
      tenants: result.tenants,
      statements: result.statements,
    }),
  );
} finally {
  await store.close();
}
