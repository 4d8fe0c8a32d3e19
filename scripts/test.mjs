#!/usr/bin/env node
// Runs every *.test.ts beside the code (each workspace's src/) and everything in tests/ through
// Node's own test runner, so the summary line shows what ran. Extra args narrow the set:
//   npm test -- host-agent            (paths containing "host-agent")
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['proto/src', 'control-plane/src', 'host-agent/src', 'sfu/src', 'cli/src', 'web/src', 'tests'];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts')) files.push(relative(root, path));
  }
}
for (const r of roots) walk(join(root, r));
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const selected = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// The host agent's docker runtime and adb interop suites and the end-to-end suites (one runs the
// docker runtime) need podman's Docker API and Debian's adb; the sfu's suites need mediasoup's worker
// (built from Debian's libraries, see README.md) and Debian's Chromium. The setup scripts are
// idempotent and quick once done (the worker takes minutes once per machine, then comes from a
// cache), so a fresh machine needs nothing but this command.
const needs = (pattern) => selected.some((f) => pattern.test(f));
const setup = [];
if (needs(/^(host-agent|tests\/e2e|sfu)\//)) setup.push('scripts/setup-system.sh');
if (needs(/^(host-agent|tests\/e2e)\//)) setup.push('scripts/setup-podman.sh');
const worker = join(root, 'node_modules/mediasoup/worker/out/Release/mediasoup-worker');
if (needs(/^(sfu|web)\//) && !existsSync(worker)) setup.push('scripts/mediasoup-worker.sh');
if (process.env.CPHONE_SKIP_SETUP !== '1') {
  for (const script of setup) {
    const run = spawnSync('bash', [script], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (run.status !== 0) {
      console.error(`${script} failed (exit ${run.status}); set CPHONE_SKIP_SETUP=1 to run without it`);
      process.exit(1);
    }
  }
}
// The web console's static build, which the browser suites and `cphone up` serve: built once here,
// before suites that run side by side could each start the same build.
if (needs(/^(web|cli|tests\/e2e)\//)) {
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'web/src/build.ts', '--if-stale'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) {
    console.error(`building the web console failed (exit ${build.status})`);
    process.exit(1);
  }
}
// The bundles suites run as processes (the CLI's cli/dist/cphone.mjs; tests/deploy runs every
// program's): built once here too, so suites side by side do not each write the same file.
const bundles = new Set();
if (needs(/^(cli|tests\/cli|tests\/e2e)\//)) bundles.add('cli');
if (needs(/^tests\/deploy\//)) for (const t of ['control-plane', 'host-agent', 'cli']) bundles.add(t);
if (bundles.size) {
  const build = spawnSync(process.execPath, ['scripts/bundle.mjs', '--if-stale', ...bundles], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) {
    console.error(`building the bundles (${[...bundles].join(', ')}) failed (exit ${build.status})`);
    process.exit(1);
  }
}
const concurrency = process.env.TEST_CONCURRENCY ?? String(Math.max(2, availableParallelism()));
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...selected.sort()],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
