// The production build: every program's bundle runs with plain `node` (no TypeScript loader), prints
// its version and commit with --version, and the control plane's bundles migrate a fresh PostgreSQL
// database, start on it, answer /readyz and serve the API.
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@cphone/proto/testing';
import { freshDatabase, getOwnTenant, LogLines } from './harness.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
// Plain node: no --import tsx, and nothing from the test runner's environment that could add one.
const env = (extra: Record<string, string>) => ({ PATH: process.env.PATH ?? '', NODE_OPTIONS: '', ...extra });

const bundles = {
  controlPlane: join(root, 'control-plane/dist/control-plane.mjs'),
  migrate: join(root, 'control-plane/dist/migrate.mjs'),
  console: join(root, 'control-plane/dist/console-server.mjs'),
  agent: join(root, 'host-agent/dist/cphone-agent.mjs'),
  cli: join(root, 'cli/dist/cphone.mjs'),
};

before(() => {
  // What `npm run build` does after its type check; a no-op when nothing changed since the last build.
  execFileSync(
    process.execPath,
    [join(root, 'scripts/bundle.mjs'), '--if-stale', 'control-plane', 'host-agent', 'cli'],
    {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
});

describe('--version', () => {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  const cases: [string, string, string][] = [
    ['control plane', bundles.controlPlane, `cphone-control-plane ${version} (${commit})`],
    ['migrate', bundles.migrate, `cphone-migrate ${version} (${commit})`],
    ['console server', bundles.console, `cphone-console ${version} (${commit})`],
    ['agent', bundles.agent, `cphone-agent ${version} (${commit})`],
    ['cli', bundles.cli, `${version} (${commit})`],
  ];
  for (const [name, bundle, expected] of cases) {
    test(`${name} prints its version and commit and exits 0`, () => {
      const out = execFileSync(process.execPath, [bundle, '--version'], { env: env({}), encoding: 'utf8' });
      assert.equal(out.trim(), expected);
    });
  }

  test('a bundle holds no TypeScript loader and imports only node_modules it keeps external', async () => {
    const text = await readFile(bundles.controlPlane, 'utf8');
    assert.doesNotMatch(text, /from ['"]tsx['"]|\.ts['"]\)/);
    const imports = [...text.matchAll(/^import .* from ['"]([^'"]+)['"];?$/gm)].map((m) => m[1]);
    const packages = new Set(imports.filter((s) => s && !s.startsWith('node:')));
    assert.deepEqual([...packages].sort(), ['@electric-sql/pglite', '@node-rs/argon2']);
  });
});

describe('the control plane bundle on a fresh PostgreSQL database', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let dataDir: string;
  let child: ChildProcess | undefined;

  before(async () => {
    db = await freshDatabase('cphone_build');
    dataDir = await mkdtemp(join(tmpdir(), 'cphone-build-'));
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('migrate.mjs brings the database to the latest schema', () => {
    const out = execFileSync(process.execPath, [bundles.migrate], {
      env: env({ DATABASE_URL: db.url, CPHONE_DATA_DIR: dataDir }),
      encoding: 'utf8',
    });
    assert.match(out, /"msg":"migrations applied"/);
  });

  test('control-plane.mjs starts, answers /readyz 200 and an API call, and stops on SIGTERM', async () => {
    const logs = new LogLines();
    const proc = spawn(process.execPath, [bundles.controlPlane], {
      env: env({
        DATABASE_URL: db.url,
        CPHONE_DATA_DIR: dataDir,
        CPHONE_MIGRATE: 'false',
        CPHONE_HTTP_PORT: '0',
        CPHONE_GRPC_HOST: '127.0.0.1',
        CPHONE_GRPC_PORT: '0',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout.setEncoding('utf8').on('data', (c: string) => logs.push(c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => logs.push(c));
    const listening = await waitFor(
      'the control plane to listen',
      () => {
        if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}:\n${logs.tail()}`);
        return logs.find('control plane listening');
      },
      (l) => l !== undefined,
      { timeoutMs: 60_000 },
    );
    const base = String(listening?.httpUrl);
    const ready = await waitFor(
      '/readyz to answer 200',
      () => fetch(`${base}/readyz`).then((r) => r.status),
      (s) => s === 200,
      { timeoutMs: 30_000 },
    );
    assert.equal(ready, 200);
    const key = (await readFile(join(dataDir, 'bootstrap-admin-key'), 'utf8')).trim();
    const { status, body } = await getOwnTenant(base, key);
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(String((body as { tenant?: { tenantId?: string } }).tenant?.tenantId), /\S/);

    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, logs.tail());
  });
});
