// The CLI as one file: dist/cphone.mjs, which runs on any Node >= 20 with nothing else installed.
// The recipe is scripts/bundle.mjs (shared by every program cphone ships; it embeds the version and
// commit); `npm run build` runs it after the type check, and bin/cphone.mjs rebuilds when stale.
//   node cli/build.mjs [--if-stale]
import { fileURLToPath } from 'node:url';
import { bundle, bundlePath, isStale as targetIsStale } from '../scripts/bundle.mjs';

export const BUNDLE = bundlePath('cli', 'cphone');
export const isStale = () => targetIsStale('cli');
export const build = () => bundle('cli');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale') && !isStale()) process.exit(0);
  await build();
}
