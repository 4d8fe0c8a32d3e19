#!/usr/bin/env node
// `npm run bench -- <name> [args]` runs bench/<name>.ts; each benchmark prints its figures and ends
// with one JSON line. Benchmarks never fail on a time.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const [name, ...rest] = process.argv.slice(2);
const names = readdirSync(`${root}bench`)
  .filter((f) => f.endsWith('.ts') && !f.includes('.test.') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3));
if (!name || !existsSync(`${root}bench/${name}.ts`)) {
  console.error(`usage: npm run bench -- <name>   (one of: ${names.join(', ')})`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', `bench/${name}.ts`, ...rest], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
