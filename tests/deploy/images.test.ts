// The container images as a datacenter runs them: built by deploy/images/build.sh with podman, run
// with a read-only root file system as their non-root user on the host's network. The control
// plane's image migrates a fresh database on the machine's PostgreSQL, answers /readyz and an API
// call; the console's image serves the console's index page; both pass their own health checks.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from '@cphone/proto/testing';
import { freePort } from '../e2e/harness.js';
import { type FreshDatabase, freshDatabase, getOwnTenant } from './harness.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
const suffix = randomBytes(4).toString('hex');

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await run('podman', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** Exit code and output of a command in a running container. */
async function exec(container: string, ...cmd: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('podman', ['exec', container, ...cmd]);
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface ImageInspect {
  Config: { User: string; Labels?: Record<string, string> };
  Healthcheck?: { Test?: string[] };
}
async function inspectImage(ref: string): Promise<ImageInspect> {
  const [image] = JSON.parse(await podman('image', 'inspect', ref)) as ImageInspect[];
  assert.ok(image, `no image ${ref}`);
  return image;
}

const containers: string[] = [];

/** Starts a detached container (removed after the suite). */
async function start(name: string, ...args: string[]): Promise<void> {
  containers.push(name);
  await podman('run', '--detach', '--name', name, ...args);
}

/** GETs `url` until `ok` holds, failing at once (with the logs) if the container stops. */
function fetchWhileRunning(name: string, url: string, ok: (status: number) => boolean): Promise<Response> {
  return waitFor(
    `${url} from ${name}`,
    async () => {
      const state = await podman('inspect', '--format', '{{.State.Status}}', name);
      if (state !== 'running') throw new Error(`container ${state}: ${await podman('logs', name)}`);
      return fetch(url);
    },
    (r) => ok(r.status),
    { timeoutMs: 60_000 },
  );
}

/** The container's process runs as uid 1000 and can write only to its tmpfs (and volumes). */
async function assertUnprivilegedReadOnly(name: string): Promise<void> {
  const uid = await exec(name, 'node', '-e', 'process.stdout.write(String(process.getuid()))');
  assert.deepEqual(uid, { code: 0, output: '1000' });
  const write = (path: string) => exec(name, 'node', '-e', `require('fs').writeFileSync('${path}', 'x')`);
  const readOnly = await write('/app/written-at-run-time');
  assert.notEqual(readOnly.code, 0);
  assert.match(readOnly.output, /EROFS/);
  assert.equal((await write('/tmp/scratch')).code, 0, 'the tmpfs on /tmp is writable');
}

let controlPlaneRef = '';
let consoleRef = '';

before(
  async () => {
    await run('bash', [join(root, 'scripts/setup-podman.sh')]);
    const { stdout } = await run('bash', [join(root, 'deploy/images/build.sh')], {
      maxBuffer: 64 * 1024 * 1024,
    });
    [controlPlaneRef = '', consoleRef = ''] = stdout.trim().split('\n');
  },
  { timeout: 20 * 60_000 },
);
after(async () => {
  for (const c of containers) await podman('rm', '--force', '--time', '2', c).catch(() => undefined);
});

test('build.sh prints the two images, one per line, named by the version', () => {
  assert.equal(controlPlaneRef, `localhost/cphone/control-plane:${version}`);
  assert.equal(consoleRef, `localhost/cphone/console:${version}`);
});

test('both images run as a non-root user and declare a health check', async () => {
  for (const ref of [controlPlaneRef, consoleRef]) {
    const image = await inspectImage(ref);
    assert.equal(image.Config.User, '1000:1000', ref);
    assert.deepEqual(image.Healthcheck?.Test, ['CMD', 'node', '/app/healthcheck.mjs'], ref);
  }
});

describe('the control-plane image on a fresh PostgreSQL database', () => {
  let db: FreshDatabase;
  let dataDir: string;
  const name = `cphone-images-cp-${suffix}`;
  let port = 0;

  before(async () => {
    db = await freshDatabase('cphone_images');
    // The data volume, owned by the image's user as a Kubernetes fsGroup or a podman volume would be.
    dataDir = await mkdtemp(join(tmpdir(), 'cphone-images-'));
    await chown(dataDir, 1000, 1000);
    port = await freePort();
  });
  after(async () => {
    await podman('rm', '--force', '--time', '2', name).catch(() => undefined);
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const runArgs = () => [
    '--read-only',
    '--network=host',
    '--volume',
    `${dataDir}:/var/lib/cphone`,
    '--env',
    `DATABASE_URL=${db.url}`,
    '--env',
    'CPHONE_HTTP_HOST=127.0.0.1',
    '--env',
    `CPHONE_HTTP_PORT=${port}`,
    '--env',
    'CPHONE_GRPC_HOST=127.0.0.1',
    '--env',
    'CPHONE_GRPC_PORT=0',
  ];

  test('--version prints the version and the commit it was built from', async () => {
    const { Labels } = (await inspectImage(controlPlaneRef)).Config;
    const out = await podman('run', '--rm', '--read-only', controlPlaneRef, '--version');
    const commit = Labels?.['org.opencontainers.image.revision'];
    assert.match(String(commit), /^[0-9a-f]{7,}(-dirty)?$/);
    assert.equal(Labels?.['org.opencontainers.image.version'], version);
    assert.equal(out, `cphone-control-plane ${version} (${commit})`);
  });

  test('node /app/migrate.mjs (the migration job) migrates the database', async () => {
    const out = await podman(
      'run',
      '--rm',
      ...runArgs(),
      '--entrypoint',
      'node',
      controlPlaneRef,
      '/app/migrate.mjs',
    );
    assert.match(out, /"msg":"migrations applied"/);
  });

  test('the control plane starts read-only as uid 1000, answers /readyz 200 and the API, and is healthy', async () => {
    await start(name, ...runArgs(), '--env', 'CPHONE_MIGRATE=false', controlPlaneRef);
    const base = `http://127.0.0.1:${port}`;
    await fetchWhileRunning(name, `${base}/readyz`, (s) => s === 200);
    const key = (await readFile(join(dataDir, 'bootstrap-admin-key'), 'utf8')).trim();
    const { status, body } = await getOwnTenant(base, key);
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(String((body as { tenant?: { tenantId?: string } }).tenant?.tenantId), /\S/);

    await assertUnprivilegedReadOnly(name);
    assert.equal((await exec(name, 'node', '/app/healthcheck.mjs')).code, 0);
    await podman('healthcheck', 'run', name);
  });
});

describe('the console image', () => {
  const name = `cphone-images-console-${suffix}`;
  after(async () => {
    await podman('rm', '--force', '--time', '2', name).catch(() => undefined);
  });

  test('serves the index page with its security policy, read-only as uid 1000, and is healthy', async () => {
    const port = await freePort();
    await start(
      name,
      '--read-only',
      '--network=host',
      '--env',
      'CPHONE_HTTP_HOST=127.0.0.1',
      '--env',
      `CPHONE_HTTP_PORT=${port}`,
      consoleRef,
    );
    const res = await fetchWhileRunning(name, `http://127.0.0.1:${port}/`, (s) => s === 200);
    const html = await res.text();
    assert.match(html, /<!doctype html>/i);
    assert.match(html, /assets\/[^"]+\.js/);
    assert.match(String(res.headers.get('content-security-policy')), /script-src 'self'/);
    const player = await fetch(`http://127.0.0.1:${port}/cphone-player.js`);
    assert.equal(player.status, 200);
    await assertUnprivilegedReadOnly(name);
    await podman('healthcheck', 'run', name);
  });
});
