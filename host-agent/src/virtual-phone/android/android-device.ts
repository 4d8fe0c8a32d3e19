import type { Logger } from 'pino';
import type { ServiceHandler } from '../adb/device-connection.js';
import { PhoneEvents } from '../events.js';
import { Clipboard } from './clipboard.js';
import { Display } from './display.js';
import { MemoryFileSystem } from './file-system.js';
import { FocusedField } from './focused-field.js';
import { InputManager } from './input-manager.js';
import { LogBuffer } from './logcat.js';
import { PackageManager } from './package-manager.js';
import { type DeviceIdentity, defaultProperties, Properties } from './properties.js';

export interface ScreenSpec {
  width: number;
  height: number;
  dpi: number;
}

/** Something listening on a `localabstract:` socket name (scrcpy's server does). */
export interface AbstractSocketListener {
  /** A handler for one more connection, or undefined to refuse it (adb then sees CLSE). */
  open(): ServiceHandler | undefined;
}

export interface AndroidDeviceOptions {
  identity: DeviceIdentity;
  screen: ScreenSpec;
  /** Frames per second the screen content changes at. */
  refreshRate: number;
  /** Where the screen recordings the scrcpy server streams are (default: the committed ones). */
  videoFixturesDir?: string | undefined;
  /** How long after (re)boot `sys.boot_completed` turns 1. */
  bootDelayMs: number;
  logger: Logger;
}

/**
 * The emulated Android behind adbd: properties, files, packages, logs, input and the abstract
 * sockets processes listen on. Rebooting kills processes, drops adb and boots again.
 */
export class AndroidDevice {
  readonly identity: DeviceIdentity;
  readonly screen: ScreenSpec;
  readonly display: Display;
  readonly clipboard = new Clipboard();
  /** The text field with input focus, where typed text and pastes land. */
  readonly focusedField = new FocusedField(this.clipboard);
  readonly input: InputManager;
  readonly videoFixturesDir: string | undefined;
  readonly properties: Properties;
  readonly fs = new MemoryFileSystem();
  readonly logcat = new LogBuffer();
  readonly events = new PhoneEvents();
  readonly packages: PackageManager;
  readonly abstractSockets = new Map<string, AbstractSocketListener>();
  readonly logger: Logger;
  /** Aborted on reboot or shutdown: long-running processes (logcat, scrcpy) end with it. */
  #lifetime = new AbortController();
  #bootTimer: NodeJS.Timeout | undefined;
  readonly #bootDelayMs: number;
  screenshots = 0;

  constructor(options: AndroidDeviceOptions) {
    this.identity = options.identity;
    this.screen = options.screen;
    this.display = new Display(options.screen, options.screen.dpi, options.refreshRate);
    this.input = new InputManager(this.events, this.display, this.focusedField);
    this.videoFixturesDir = options.videoFixturesDir;
    this.logger = options.logger;
    this.#bootDelayMs = options.bootDelayMs;
    this.properties = new Properties(defaultProperties(options.identity));
    this.properties.set('ro.sf.lcd_density', String(options.screen.dpi));
    this.packages = new PackageManager(
      this.fs,
      (event) => {
        this.logcat.log(
          'I',
          'PackageManager',
          `${event.kind} ${event.pkg.packageName} v${event.pkg.versionCode}`,
        );
        this.events.emit('package', event);
      },
      options.identity,
    );
    this.#boot();
  }

  get lifetime(): AbortSignal {
    return this.#lifetime.signal;
  }

  get booted(): boolean {
    return this.properties.get('sys.boot_completed') === '1';
  }

  #boot(): void {
    this.logcat.log('I', 'init', 'starting boot');
    this.#bootTimer = setTimeout(() => {
      this.properties.set('sys.boot_completed', '1');
      this.properties.set('dev.bootcomplete', '1');
      this.properties.set('init.svc.bootanim', 'stopped');
      this.logcat.log('I', 'ActivityManager', 'boot completed');
      this.events.emit('boot');
    }, this.#bootDelayMs);
  }

  /** Waits until `sys.boot_completed` is 1. */
  waitForBoot(): Promise<void> {
    if (this.booted) return Promise.resolve();
    return new Promise((resolve) => this.events.once('boot', () => resolve()));
  }

  reboot(): void {
    this.logger.info('rebooting');
    clearTimeout(this.#bootTimer);
    this.#lifetime.abort();
    this.#lifetime = new AbortController();
    this.abstractSockets.clear();
    this.properties.delete('sys.boot_completed');
    this.properties.delete('dev.bootcomplete');
    this.properties.set('init.svc.bootanim', 'running');
    // adbd starts unprivileged after a reboot, whatever `adb root` said before.
    this.properties.set('service.adb.root', '0');
    // Apps start afresh and the clipboard lives in memory; the rotation setting survives.
    this.clipboard.clear();
    this.focusedField.clear();
    this.display.setStill(false);
    this.events.emit('reboot');
    this.#boot();
  }

  shutdown(): void {
    clearTimeout(this.#bootTimer);
    this.#lifetime.abort();
    this.abstractSockets.clear();
  }
}
