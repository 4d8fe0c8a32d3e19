// Production builds: every Node program cphone ships as one ES module file made by esbuild, run with
// plain `node` (no TypeScript loader). `npm run build` runs this after `tsc -b`, so a tree that does
// not type-check emits nothing.
//   node scripts/bundle.mjs [--if-stale] [target ...]     targets: cli control-plane host-agent web
//   node scripts/bundle.mjs --install-to DIR target         a built target's bundles and the installed
//                                                          packages they keep external, in DIR (images)
// Each bundle embeds the release and the git commit (`define`: __CPHONE_VERSION__, __CPHONE_COMMIT__;
// proto/src/version.ts reads them); CPHONE_COMMIT overrides git (a container build has no .git).
// With --if-stale a target is rebuilt only when one of its inputs is newer than its outputs or the
// commit changed, so a warm build costs a few stat calls.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

// Packages with native code or files read beside their own module (PGlite's WebAssembly, the argon2
// and ssh2 bindings, mediasoup's worker) stay in node_modules; optional peers their loaders only
// try (pg-native, bufferutil) are left out. Everything else is inside the bundle.
const NODE_TARGETS = {
  cli: {
    dir: 'cli',
    entries: { cphone: 'cli/src/bin.ts' },
    inputs: ['cli/src', 'proto/src'],
    external: [],
  },
  'control-plane': {
    dir: 'control-plane',
    entries: {
      'control-plane': 'control-plane/src/main.ts',
      migrate: 'control-plane/src/migrate-main.ts',
      'console-server': 'control-plane/src/console-main.ts',
    },
    inputs: ['control-plane/src', 'proto/src'],
    external: ['@electric-sql/pglite', '@node-rs/argon2', 'pg-native'],
  },
  'host-agent': {
    dir: 'host-agent',
    entries: { 'cphone-agent': 'host-agent/src/main.ts' },
    inputs: ['host-agent/src', 'sfu/src', 'proto/src'],
    external: ['mediasoup', 'ssh2', 'cpu-features', 'bufferutil', 'utf-8-validate'],
  },
};
export const TARGETS = [...Object.keys(NODE_TARGETS), 'web'];

/** A bundle's path: <package>/dist/<name>.mjs. */
export function bundlePath(target, name) {
  return join(ROOT, NODE_TARGETS[target].dir, 'dist', `${name}.mjs`);
}

function newest(path) {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules' || name === 'dist' || name.endsWith('.test.ts')) continue;
    max = Math.max(max, newest(join(path, name)));
  }
  return max;
}

/** The short commit of the checkout, CPHONE_COMMIT when set, or "unknown" outside git. */
export function commit() {
  if (process.env.CPHONE_COMMIT) return process.env.CPHONE_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

function version() {
  return JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
}

const stampPath = (target) => join(ROOT, NODE_TARGETS[target].dir, 'dist', '.bundle-stamp.json');

/** True when an input is newer than the target's bundles, or they were built at another commit. */
export function isStale(target) {
  const spec = NODE_TARGETS[target];
  const stamp = (() => {
    try {
      return JSON.parse(readFileSync(stampPath(target), 'utf8'));
    } catch {
      return undefined;
    }
  })();
  if (!stamp || stamp.version !== version() || stamp.commit !== commit()) return true;
  const built = Math.min(
    ...Object.keys(spec.entries).map(
      (n) => statSync(bundlePath(target, n), { throwIfNoEntry: false })?.mtimeMs ?? 0,
    ),
  );
  const inputs = [
    ...spec.inputs,
    `${spec.dir}/package.json`,
    'package.json',
    'package-lock.json',
    'scripts/bundle.mjs',
  ];
  return inputs.some((p) => newest(join(ROOT, p)) > built);
}

/** Bundles one Node target (every entry of it) into <package>/dist/<name>.mjs. */
export async function bundle(target) {
  const spec = NODE_TARGETS[target];
  if (!spec) throw new Error(`bundle: unknown target ${target}; one of ${TARGETS.join(', ')}`);
  const { build } = await import('esbuild');
  const info = { version: version(), commit: commit() };
  const outdir = join(ROOT, spec.dir, 'dist');
  mkdirSync(outdir, { recursive: true });
  for (const [name, entry] of Object.entries(spec.entries)) {
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: bundlePath(target, name),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      minify: false,
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'warning',
      external: spec.external,
      define: {
        __CPHONE_VERSION__: JSON.stringify(info.version),
        __CPHONE_COMMIT__: JSON.stringify(info.commit),
      },
      // CommonJS dependencies call require(); an ES module bundle has none of its own.
      banner: {
        js: "import { createRequire as __cphoneRequire } from 'node:module';\nconst require = __cphoneRequire(import.meta.url);",
      },
    });
  }
  writeFileSync(stampPath(target), `${JSON.stringify(info)}\n`);
}

/** Where Node would find package `name` from `dir`: the nearest node_modules/<name> above it. */
function findPackage(name, dir) {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (d === ROOT || d === dirname(d)) return undefined;
  }
}

/**
 * Copies a target's bundles (and source maps) into `dest`, with the packages it keeps external and
 * everything they depend on in dest/node_modules: all a runtime needs beside Node. An external that
 * is not installed (an optional peer such as pg-native) is left out, as Node would find it missing.
 */
export function installTo(target, dest) {
  const spec = NODE_TARGETS[target];
  if (!spec)
    throw new Error(`bundle: unknown target ${target}; one of ${Object.keys(NODE_TARGETS).join(', ')}`);
  mkdirSync(dest, { recursive: true });
  for (const name of Object.keys(spec.entries)) {
    const file = bundlePath(target, name);
    if (!existsSync(file)) throw new Error(`bundle: ${file} is missing; build it first (npm run build)`);
    cpSync(file, join(dest, `${name}.mjs`));
    if (existsSync(`${file}.map`)) cpSync(`${file}.map`, join(dest, `${name}.mjs.map`));
  }
  const copied = new Set();
  const copy = (name, fromDir, optional) => {
    const found = findPackage(name, fromDir);
    if (!found) {
      if (optional) return;
      throw new Error(`bundle: ${name} (needed from ${fromDir}) is not installed`);
    }
    if (copied.has(found)) return;
    copied.add(found);
    // Where it sits under its first node_modules (nested copies stay nested, as npm placed them).
    cpSync(found, join(dest, found.slice(found.indexOf('node_modules/'))), {
      recursive: true,
      dereference: true,
      filter: (src) => !src.slice(found.length).includes('/node_modules/'),
    });
    const pkg = JSON.parse(readFileSync(join(found, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies ?? {})) copy(dep, found, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) copy(dep, found, true);
  };
  for (const name of spec.external) copy(name, join(ROOT, spec.dir), true);
}

/** The web console (Vite, static files in web/dist/console): its own build, which checks staleness itself. */
function buildConsole(ifStale) {
  const args = ['--import', 'tsx', join(ROOT, 'web/src/build.ts'), ...(ifStale ? ['--if-stale'] : [])];
  const run = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (run.status !== 0) throw new Error(`bundle: the web console's build failed (exit ${run.status})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const installAt = args.indexOf('--install-to');
  if (installAt >= 0) {
    const [dest, target] = [args[installAt + 1], args[installAt + 2]];
    if (!dest || !target) {
      console.error('bundle: --install-to DIR TARGET');
      process.exit(2);
    }
    installTo(target, dest);
    process.exit(0);
  }
  const ifStale = args.includes('--if-stale');
  const wanted = args.filter((a) => !a.startsWith('--'));
  for (const target of wanted.length ? wanted : TARGETS) {
    if (!TARGETS.includes(target)) {
      console.error(`bundle: unknown target ${target}; one of ${TARGETS.join(', ')}`);
      process.exit(2);
    }
    if (target === 'web') buildConsole(ifStale);
    else if (!ifStale || isStale(target)) await bundle(target);
  }
}
