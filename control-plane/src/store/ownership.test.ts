// One owner per fact, checked on the source: every query on the `host` table lives in
// store/hosts.ts, and the host ledger (allocated_*) is written there alone (adjustAllocations, which
// only the plan applier calls). Test support (testing.ts, test-*.ts, *.test.ts) and migrations
// are exempt: they set up rows as the store would leave them.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const root = new URL('..', import.meta.url).pathname;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'migrations') out.push(...(await sources(path)));
    } else if (
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.test.ts') &&
      !entry.name.startsWith('test-') &&
      entry.name !== 'testing.ts' &&
      entry.name !== 'fake-host.ts'
    ) {
      out.push(path);
    }
  }
  return out;
}

// The query builder's forms, and raw SQL's (`update host set`, `from host where`, `into host (`).
const HOST_QUERY =
  /(selectFrom|updateTable|insertInto|deleteFrom)\(\s*'host'\s*\)|\bupdate\s+host\s+set\b|\bfrom\s+host\s+(where|join|as|h)\b|\binto\s+host\s*\(/;
const LEDGER_WRITE = /allocated_(vcpu_millicores|memory_mib|storage_gib|devices)\s*:\s*eb\(|set\s+allocated_/;

test('queries on host live in store/hosts.ts, and so does the one ledger write', async () => {
  const offenders: string[] = [];
  const ledgerWriters: string[] = [];
  for (const path of await sources(root)) {
    const text = await readFile(path, 'utf8');
    const name = relative(root, path);
    if (name !== 'store/hosts.ts' && HOST_QUERY.test(text)) offenders.push(name);
    if (LEDGER_WRITE.test(text)) ledgerWriters.push(name);
  }
  assert.deepEqual(offenders, [], 'files querying the host table outside store/hosts.ts');
  assert.deepEqual(ledgerWriters, ['store/hosts.ts'], 'files writing host.allocated_*');
  const hosts = await readFile(join(root, 'store/hosts.ts'), 'utf8');
  assert.equal(hosts.match(LEDGER_WRITE)?.length ? 1 : 0, 1);
  // And store/hosts.ts's ledger write has one caller: the plan applier.
  const callers: string[] = [];
  for (const path of await sources(root)) {
    if ((await readFile(path, 'utf8')).includes('adjustAllocations(')) callers.push(relative(root, path));
  }
  assert.deepEqual(callers.sort(), ['placement/applier.ts', 'store/hosts.ts']);
});
