import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AdbScrcpyOptionsLatest } from '@yume-chan/adb-scrcpy';
import { SCRCPY_SERVER_SHA256, SCRCPY_SERVER_VERSION } from './scrcpy-version.js';

export { SCRCPY_SERVER_SHA256, SCRCPY_SERVER_VERSION };

/** Where the server is pushed on the phone (scrcpy's own default path). */
export const SCRCPY_SERVER_DEVICE_PATH = '/data/local/tmp/scrcpy-server.jar';

/** The library's own idea of the version must be the pinned one, or the server would refuse it. */
const libraryVersion = new AdbScrcpyOptionsLatest({}).version;
if (libraryVersion !== SCRCPY_SERVER_VERSION) {
  throw new Error(
    `@yume-chan/adb-scrcpy speaks scrcpy ${libraryVersion}, the agent pins ${SCRCPY_SERVER_VERSION}`,
  );
}

/** The server file on the host is not the pinned release. */
export class ScrcpyServerIntegrityError extends Error {
  override readonly name = 'ScrcpyServerIntegrityError';
  constructor(
    readonly path: string,
    readonly sha256: string,
    readonly expected: string,
  ) {
    super(`${path} has sha256 ${sha256}, not ${expected} (scrcpy-server-v${SCRCPY_SERVER_VERSION})`);
  }
}

/** The server binary on the host, and the hash it must have. */
export interface ScrcpyServerBinary {
  readonly path: string;
  /** Default SCRCPY_SERVER_SHA256; tests pushing a stand-in file name its hash. */
  readonly sha256?: string;
}

/** Reads the server and checks its hash; throws ScrcpyServerIntegrityError on a mismatch. */
export async function loadScrcpyServer({
  path,
  sha256 = SCRCPY_SERVER_SHA256,
}: ScrcpyServerBinary): Promise<Uint8Array> {
  const bytes = await readFile(path);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== sha256.toLowerCase()) throw new ScrcpyServerIntegrityError(path, actual, sha256);
  return bytes;
}
