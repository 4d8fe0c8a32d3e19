// Test helpers: reach the Docker Engine API that scripts/setup-podman.sh provides, or fail saying so.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { build } from 'esbuild';
import { LABEL_SCOPE } from './labels.js';

export const repoRoot = new URL('../../../', import.meta.url).pathname;
const SETUP_HINT =
  'run `bash scripts/setup-podman.sh` (it installs podman, starts its API service and builds the stand-in image)';

export function engineSocket(): string {
  const explicit = process.env['CPHONE_DOCKER_SOCKET'];
  if (explicit) return explicit;
  const host = process.env['DOCKER_HOST'];
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/run/cphone-podman.sock';
}

/** The engine and the stand-in image; fails (never skips) when either is missing. */
export async function connectEngine(): Promise<{ docker: Docker; socketPath: string; image: string }> {
  const socketPath = engineSocket();
  const docker = new Docker({ socketPath });
  await docker.ping().catch((err: unknown) => {
    assert.fail(`no Docker Engine API on ${socketPath} (${String(err)}): ${SETUP_HINT}`);
  });
  const image = execFileSync('bash', [join(repoRoot, 'deploy/standin-image/build.sh'), '--ref'], {
    encoding: 'utf8',
  }).trim();
  await docker
    .getImage(image)
    .inspect()
    .catch(() => assert.fail(`stand-in image ${image} is missing: ${SETUP_HINT}`));
  return { docker, socketPath, image };
}

/**
 * The virtual phone as one file (virtual-phone.mjs) in a fresh temp dir, which the stand-in image's
 * node runs from a read-only bind mount; `binds` mount it and the screen fixture where the bundle
 * looks. The caller removes `dir`.
 */
export async function bundleStandinPhone(): Promise<{ dir: string; binds: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-standin-'));
  await build({
    entryPoints: [join(repoRoot, 'host-agent/src/runtime/standin-phone.ts')],
    outfile: join(dir, 'virtual-phone.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'error',
    // CommonJS dependencies inside an ESM bundle still call require().
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  // The bundle resolves the screen fixture as ../../../fixtures from /opt/cphone: /fixtures.
  return { dir, binds: [`${dir}:/opt/cphone:ro`, `${join(repoRoot, 'host-agent/fixtures')}:/fixtures:ro`] };
}

/** Removes every container, volume and network a test scope made. */
export async function removeScope(docker: Docker, scope: string): Promise<void> {
  const filters = { label: [`${LABEL_SCOPE}=${scope}`] };
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true });
  }
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove();
  for (const n of await docker.listNetworks({ filters })) {
    await docker
      .getNetwork(n.Name)
      .remove()
      .catch(() => undefined);
  }
}

/** Runs a command in a container; its exit code and stdout. */
export async function execIn(
  docker: Docker,
  container: string,
  cmd: string[],
): Promise<{ code: number; stdout: string }> {
  const execution = await docker
    .getContainer(container)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await execution.start({ hijack: true, stdin: false });
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  docker.modem.demuxStream(stream, stdout, new PassThrough());
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const info = await execution.inspect();
  return { code: info.ExitCode ?? -1, stdout: Buffer.concat(chunks).toString('utf8') };
}
