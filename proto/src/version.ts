// The version and commit every cphone program prints with --version and sends where a version is
// reported (the agent's Hello, the CLI's user agent). The bundles (scripts/bundle.mjs) embed both
// with esbuild's `define`; run from source, the version comes from the repository's package.json
// and the commit is "source".
import { readFileSync } from 'node:fs';

declare const __CPHONE_VERSION__: string | undefined;
declare const __CPHONE_COMMIT__: string | undefined;

export interface BuildInfo {
  /** The release, e.g. 0.2.0 (package.json). */
  readonly version: string;
  /** The git commit the bundle was built from (short hash), or "source" when run from source. */
  readonly commit: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  if (typeof __CPHONE_VERSION__ === 'string' && typeof __CPHONE_COMMIT__ === 'string') {
    cached = { version: __CPHONE_VERSION__, commit: __CPHONE_COMMIT__ };
  } else {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    cached = { version: pkg.version, commit: 'source' };
  }
  return cached;
}

/** "0.2.0 (36f1448)": what `--version` prints after the program's name. */
export function versionString(): string {
  const { version, commit } = buildInfo();
  return `${version} (${commit})`;
}

/**
 * For a program's entry point: when its arguments hold `--version`, prints "<program> <version>
 * (<commit>)" and exits 0.
 */
export function exitIfVersionFlag(program: string, argv: readonly string[] = process.argv.slice(2)): void {
  if (!argv.includes('--version')) return;
  process.stdout.write(`${program} ${versionString()}\n`);
  process.exit(0);
}
