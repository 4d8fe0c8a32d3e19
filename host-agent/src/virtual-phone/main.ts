import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startVirtualPhone } from './phone.js';

// Usage: npm run virtual-phone -- [--port 5555] [--host 127.0.0.1] [--name serial] [--model m]
//        [--boot-delay ms] [--auth] [--adb-key ~/.android/adbkey.pub] [--data-dir dir]
//        [--video-fixtures dir]
// --auth alone trusts any key the host offers; with --adb-key only that key is authorized.
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5555' },
    host: { type: 'string', default: '127.0.0.1' },
    name: { type: 'string', default: 'virtual-phone-1' },
    model: { type: 'string' },
    'boot-delay': { type: 'string', default: '0' },
    auth: { type: 'boolean', default: false },
    'adb-key': { type: 'string' },
    // Keeps /data, /sdcard, installed apps and persist.* properties across runs.
    'data-dir': { type: 'string' },
    // Screen recordings to stream (screen-<W>x<H>.h264, see scripts/make-h264-fixture.sh).
    'video-fixtures': { type: 'string' },
  },
});

const logger = pino({ level: 'info' });
const adbKey = values['adb-key']?.replace(/^~/, homedir());
const phone = await startVirtualPhone({
  serial: values.name,
  port: Number.parseInt(values.port, 10),
  host: values.host,
  bootDelayMs: Number.parseInt(values['boot-delay'], 10),
  ...(values.model ? { model: values.model } : {}),
  ...(values['data-dir'] ? { dataDir: values['data-dir'].replace(/^~/, homedir()) } : {}),
  ...(values['video-fixtures'] ? { videoFixturesDir: values['video-fixtures'] } : {}),
  ...(values.auth || adbKey
    ? {
        auth: adbKey
          ? { mode: 'allow-list' as const, authorizedKeys: [readFileSync(join(adbKey), 'utf8')] }
          : { mode: 'accept-any' as const },
      }
    : {}),
  logger,
});
logger.info({ address: phone.address, serial: phone.serial }, `adb connect ${phone.address}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void phone.close().then(() => process.exit(0));
  });
}
