import { createServer, type Server, type Socket } from 'node:net';
import { type Logger, pino } from 'pino';
import { type AuthOptions, AuthorizedKeys } from './adb/auth.js';
import { DeviceConnection } from './adb/device-connection.js';
import { AndroidDevice, type ScreenSpec } from './android/android-device.js';
import { DataVolume, readDataVolume } from './android/data-volume.js';
import type { InstalledPackage } from './android/package-manager.js';
import { type DeviceIdentity, hostAbi } from './android/properties.js';
import { builtinCommands } from './android/shell/builtin-commands.js';
import type { Command } from './android/shell/command.js';
import { deviceCommands } from './android/shell/device-commands.js';
import { fileCommands } from './android/shell/file-commands.js';
import { packageCommands } from './android/shell/package-commands.js';
import { systemCommands } from './android/shell/system-commands.js';
import { textCommands } from './android/shell/text-commands.js';
import { uiCommands } from './android/shell/ui-commands.js';
import type { PhoneEvents } from './events.js';
import { netSocketTransport } from './net-transport.js';
import { appProcess } from './scrcpy/app-process.js';
import { createServiceRouter } from './services/router.js';

export interface VirtualPhoneOptions {
  /** TCP port for adbd; 0 (default) picks a free one. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  serial: string;
  /** ro.product.model; default "cphone Virtual". */
  model?: string;
  /** Time until sys.boot_completed=1 after start and after each reboot; default 0. */
  bootDelayMs?: number;
  /** Default 720x1280 at 320 dpi. */
  screen?: ScreenSpec;
  /** How often the screen content changes, frames per second; default 30. */
  fps?: number;
  /**
   * ro.build.version.sdk / .release; default 31 / "12". The sim runtime passes the Android of the
   * device's Redroid image tag (runtime/sim-launcher.ts androidFromImage), as a Redroid phone
   * reports its image's. scrcpy captures audio from Android 11 (30) on.
   */
  android?: { sdk: number; release: string };
  /**
   * Screen recordings to stream instead of the committed ones (files screen-<W>x<H>.h264, made by
   * host-agent/scripts/make-h264-fixture.sh), e.g. heavier ones to measure ingest.
   */
  videoFixturesDir?: string;
  /** Require ADB authentication; absent means the phone answers CNXN at once. */
  auth?: AuthOptions;
  /**
   * Host folder standing in for the phone's /data volume: files under /data and /sdcard, installed
   * packages and persist.* properties are read from it at start and written through on change.
   * Absent: everything lives in memory and is gone on close.
   */
  dataDir?: string;
  logger?: Logger;
}

export interface VirtualPhone {
  readonly host: string;
  readonly port: number;
  /** `host:port`, what `adb connect` takes. */
  readonly address: string;
  readonly serial: string;
  readonly device: AndroidDevice;
  /** Input, scrcpy control and package events for tests. */
  readonly events: PhoneEvents;
  installedPackages(): InstalledPackage[];
  /** Drops every adb connection; sys.boot_completed is unset, then 1 after the boot delay. */
  reboot(): void;
  waitForBoot(): Promise<void>;
  close(): Promise<void>;
}

/** What the virtual phone reports unless told otherwise: the image `cphone up` registers. */
export const DEFAULT_ANDROID = { sdk: 31, release: '12' } as const;

/** Every program the emulated shell knows. */
export const phoneCommands: ReadonlyMap<string, Command> = new Map([
  ...builtinCommands,
  ...packageCommands,
  ...deviceCommands,
  ...uiCommands,
  ...textCommands,
  ...fileCommands,
  ...systemCommands,
  ['app_process', appProcess],
]);

/** Starts one virtual phone: an emulated Android behind a real adbd on TCP. */
export async function startVirtualPhone(options: VirtualPhoneOptions): Promise<VirtualPhone> {
  const logger = (options.logger ?? pino({ level: 'silent' })).child({
    module: 'virtual-phone',
    serial: options.serial,
  });
  const model = options.model ?? 'cphone Virtual';
  const identity: DeviceIdentity = {
    serial: options.serial,
    model,
    name: 'cphone_virtual',
    device: 'virtual',
    manufacturer: 'cphone',
    sdk: options.android?.sdk ?? DEFAULT_ANDROID.sdk,
    release: options.android?.release ?? DEFAULT_ANDROID.release,
    abi: hostAbi(),
  };
  const { dataDir } = options;
  const saved = dataDir === undefined ? undefined : await readDataVolume(dataDir);
  const device = new AndroidDevice({
    identity,
    screen: options.screen ?? { width: 720, height: 1280, dpi: 320 },
    refreshRate: options.fps ?? 30,
    videoFixturesDir: options.videoFixturesDir,
    bootDelayMs: options.bootDelayMs ?? 0,
    logger,
  });
  const volume =
    dataDir !== undefined && saved !== undefined ? new DataVolume(dataDir, device, saved, logger) : undefined;
  const auth = options.auth ? new AuthorizedKeys(options.auth) : undefined;
  const router = createServiceRouter(device, phoneCommands);
  // Only what is implemented is advertised: adb picks protocols (shell v2, stat v2, streamed
  // installs through `cmd`) from this list.
  const features = [
    'shell_v2',
    'cmd',
    'stat_v2',
    'ls_v2',
    'fixed_push_mkdir',
    'fixed_push_symlink_timestamp',
  ];
  const banner = `device::ro.product.name=${identity.name};ro.product.model=${model};ro.product.device=${identity.device};features=${features.join(',')}`;
  const connections = new Set<DeviceConnection>();
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const connection = new DeviceConnection({
      transport: netSocketTransport(socket),
      banner,
      router,
      auth,
      logger: logger.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` }),
    });
    connections.add(connection);
    void connection.done.then(() => connections.delete(connection));
  });
  const dropConnections = (): void => {
    for (const connection of connections) connection.destroy();
  };
  device.events.on('reboot', dropConnections);
  device.events.on('adbd-restart', dropConnections);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  logger.info({ host, port }, 'virtual phone listening');

  return {
    host,
    port,
    address: `${host}:${port}`,
    serial: options.serial,
    device,
    events: device.events,
    installedPackages: () => device.packages.userPackages(),
    reboot: () => device.reboot(),
    waitForBoot: () => device.waitForBoot(),
    close: async () => {
      device.shutdown();
      for (const connection of connections) connection.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await volume?.flush();
    },
  };
}
