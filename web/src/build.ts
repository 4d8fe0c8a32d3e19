// Builds the web console with Vite into a static folder any web server can serve (the control
// plane serves it at / in the embedded default), with the embeddable player beside it as one
// script (cphone-player.js, the file resellers include). `npm run build -w @cphone/web` calls it; so do
// `npm start` and the browser tests, which build only when a source is newer than the output.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { playerBundle } from './player/bundle.js';

const WEB = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = join(WEB, 'src');
/** The player script's name in the build. */
export const PLAYER_SCRIPT = 'cphone-player.js';
/** Where the console is built by default: web/dist/console. */
export const CONSOLE_DIR = join(WEB, 'dist', 'console');

/** What the console is built from: its own sources and the public API's generated code. */
const INPUTS = [SOURCES, join(WEB, '..', 'proto', 'src')];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const time = entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
    if (time > newest) newest = time;
  }
  return newest;
}

/** Builds the console into `outDir`; returns the folder. */
export async function buildConsole(outDir: string = CONSOLE_DIR): Promise<string> {
  // Loaded here so that importing this module (to learn CONSOLE_DIR) costs nothing.
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: join(SOURCES, 'console'),
    base: './',
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 1024,
    },
  });
  await writeFile(join(outDir, PLAYER_SCRIPT), await playerBundle());
  return outDir;
}

/** Builds the console unless `outDir` holds a build newer than every source. */
export async function ensureConsoleBuilt(outDir: string = CONSOLE_DIR): Promise<string> {
  const index = join(outDir, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...INPUTS.map(newestSource))) return outDir;
  return buildConsole(outDir);
}

// tsx web/src/build.ts [--if-stale] [outDir]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--')) ?? CONSOLE_DIR;
  await (args.includes('--if-stale') ? ensureConsoleBuilt(out) : buildConsole(out));
  process.stdout.write(`console ready in ${out}\n`);
}
