// The adbd of the stand-in image (deploy/standin-image): bundled into one file and run by the
// image's /init with Redroid's boot arguments, it boots a virtual phone shaped by them. The docker
// runtime's tests thereby run the exact create call production makes and still get a phone that
// speaks ADB on :5555.
import { hostname } from 'node:os';
import { startVirtualPhone } from '../virtual-phone/index.js';

/** Redroid-style `key=value` arguments into a map; anything else is ignored, as Redroid's init does. */
export function parseBootArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    if (eq > 0) args.set(arg.slice(0, eq), arg.slice(eq + 1));
  }
  return args;
}

function intArg(args: Map<string, string>, key: string, fallback: number): number {
  const value = Number.parseInt(args.get(key) ?? '', 10);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

async function main(): Promise<void> {
  const args = parseBootArgs(process.argv.slice(2));
  const model = args.get('ro.product.model');
  const phone = await startVirtualPhone({
    host: '0.0.0.0',
    port: 5555,
    serial: args.get('ro.serialno') ?? hostname(),
    screen: {
      width: intArg(args, 'androidboot.redroid_width', 720),
      height: intArg(args, 'androidboot.redroid_height', 1280),
      dpi: intArg(args, 'androidboot.redroid_dpi', 320),
    },
    ...(model !== undefined ? { model } : {}),
  });
  process.stdout.write(`stand-in phone ${phone.serial} listening on :${phone.port}\n`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void phone.close().then(() => process.exit(0));
    });
  }
}

if (process.argv[1]?.endsWith('virtual-phone.mjs')) await main();
