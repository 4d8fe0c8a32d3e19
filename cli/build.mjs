// The CLI as one file: esbuild bundles cli/src/bin.ts and its dependencies into dist/cphone.mjs, which
// runs on any Node >= 20 with nothing else installed. `npm run build` runs this after the type check
// (so a build that does not type-check emits nothing); bin/cphone.mjs runs it when a source is newer.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(cliDir);
export const BUNDLE = join(cliDir, 'dist', 'cphone.mjs');
/** What the bundle is made of: a newer file here means it is stale. */
const SOURCES = [
  join(cliDir, 'src'),
  join(root, 'proto', 'src'),
  join(cliDir, 'build.mjs'),
  join(cliDir, 'package.json'),
];

function newest(path) {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules' || name.endsWith('.test.ts')) continue;
    max = Math.max(max, newest(join(path, name)));
  }
  return max;
}

export function isStale() {
  const built = statSync(BUNDLE, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return SOURCES.some((s) => newest(s) > built);
}

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

export async function build() {
  const { build: esbuild } = await import('esbuild');
  const { version } = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8'));
  await esbuild({
    entryPoints: [join(cliDir, 'src', 'bin.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    define: { __CPHONE_VERSION__: JSON.stringify(`${version} (${commit()})`) },
    // CommonJS dependencies call require(); an ES module bundle has none of its own.
    banner: {
      js: "import { createRequire as __cphoneRequire } from 'node:module';\nconst require = __cphoneRequire(import.meta.url);",
    },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
  await build();
}
