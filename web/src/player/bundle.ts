// The player as ONE classic script (mediasoup-client included) that a page includes with
// <script src>: built by esbuild, in memory for a server that serves it (playerBundle, cached per
// process) or to dist/cphone-player.js (`npm run build:player -w @cphone/web`).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ENTRY = fileURLToPath(new URL('./index.ts', import.meta.url));
/** Where `build:player` writes the script. */
export const PLAYER_BUNDLE_PATH = fileURLToPath(new URL('../../dist/cphone-player.js', import.meta.url));

let cached: Promise<string> | undefined;

async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    // Browsers with requestVideoFrameCallback and WebRTC data channels.
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error(`esbuild produced nothing for ${ENTRY}`);
  return output.text;
}

/** The player script, built on the first call and cached (a failed build is tried again next call). */
export function playerBundle(): Promise<string> {
  cached ??= bundle().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  return cached;
}

/** Builds the script to dist/cphone-player.js (or `path`); returns where it went. */
export async function writePlayerBundle(path: string = PLAYER_BUNDLE_PATH): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await playerBundle());
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = await writePlayerBundle(process.argv[2]);
  process.stdout.write(`${path}\n`);
}
