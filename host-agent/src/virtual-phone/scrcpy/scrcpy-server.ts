import type { Logger } from 'pino';
import type { ServiceHandler } from '../adb/device-connection.js';
import type { ServiceSocket } from '../adb/service-socket.js';
import type { AbstractSocketListener, AndroidDevice } from '../android/android-device.js';
import { streamAudio } from './audio-streamer.js';
import { ScrcpyController } from './controller.js';
import { loadAudioFixture } from './opus-fixture.js';
import { ScreenCapture } from './screen-capture.js';
import type { ScrcpyServerOptions } from './server-options.js';
import { StreamClock } from './stream-clock.js';
import { streamVideo } from './video-streamer.js';

type Role = 'video' | 'audio' | 'control';
const DEVICE_NAME_LENGTH = 64;

/** The server's console: Ln prints "[server] LEVEL: message" (INFO on stdout, WARN/ERROR on stderr). */
export type ServerConsole = (level: 'INFO' | 'WARN' | 'ERROR', message: string) => Promise<void>;

/**
 * One running scrcpy server (forward tunnel). It accepts its sockets in scrcpy's order (video,
 * audio, control, each if enabled), sends the dummy byte on the first at once, and starts the
 * streams with the device meta once all are connected, as DesktopConnection does. It exits when
 * any socket closes or the process is killed.
 */
export class ScrcpyServerProcess implements AbstractSocketListener {
  readonly #device: AndroidDevice;
  readonly #options: ScrcpyServerOptions;
  readonly #console: ServerConsole;
  readonly #pending: Role[];
  readonly #sockets = new Map<Role, ServiceSocket>();
  readonly #stop = new AbortController();
  readonly #log: Logger;
  readonly #clock = new StreamClock();
  readonly #capture: ScreenCapture | undefined;
  #allConnected: () => void = () => {};
  readonly #connected = new Promise<void>((resolve) => {
    this.#allConnected = resolve;
  });

  constructor(device: AndroidDevice, options: ScrcpyServerOptions, console: ServerConsole) {
    this.#device = device;
    this.#options = options;
    this.#console = console;
    this.#log = device.logger.child({ module: 'scrcpy', scid: options.scid });
    this.#pending = [
      ...(options.video ? (['video'] as const) : []),
      ...(options.audio ? (['audio'] as const) : []),
      ...(options.control ? (['control'] as const) : []),
    ];
    this.#capture = options.video
      ? new ScreenCapture(device.display, options.maxSize, device.videoFixturesDir)
      : undefined;
  }

  /** Aborted when the server exits. */
  get stopped(): AbortSignal {
    return this.#stop.signal;
  }

  stop(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    this.#capture?.release();
    for (const socket of this.#sockets.values()) void socket.close().catch(() => {});
  }

  open(): ServiceHandler | undefined {
    const role = this.#pending.shift();
    if (!role || this.#stop.signal.aborted) return undefined;
    return async (socket) => {
      const first = this.#sockets.size === 0;
      this.#sockets.set(role, socket);
      this.#log.debug({ role }, 'scrcpy socket connected');
      socket.signal.addEventListener('abort', () => this.stop(), { once: true });
      if (first && this.#options.sendDummyByte) await socket.write(Uint8Array.of(0));
      if (this.#pending.length === 0) this.#allConnected();
      await Promise.race([
        this.#connected,
        new Promise((resolve) => this.#stop.signal.addEventListener('abort', resolve)),
      ]);
      if (this.#stop.signal.aborted) return;
      if (first && this.#options.sendDeviceMeta) {
        const name = Buffer.alloc(DEVICE_NAME_LENGTH);
        name.write(this.#device.identity.model.slice(0, DEVICE_NAME_LENGTH - 1), 'utf8');
        await socket.write(name);
      }
      await this.#serve(role, socket);
    };
  }

  async #serve(role: Role, socket: ServiceSocket): Promise<void> {
    const signal = this.#stop.signal;
    const options = this.#options;
    try {
      if (role === 'video' && this.#capture) {
        await streamVideo(socket, {
          display: this.#device.display,
          capture: this.#capture,
          clock: this.#clock,
          maxFps: options.maxFps,
          sendCodecMeta: options.sendCodecMeta,
          sendFrameMeta: options.sendFrameMeta,
          signal,
        });
      } else if (role === 'audio') {
        await streamAudio(socket, loadAudioFixture(), {
          clock: this.#clock,
          sdk: this.#device.identity.sdk,
          audioCodec: options.audioCodec,
          sendCodecMeta: options.sendCodecMeta,
          sendFrameMeta: options.sendFrameMeta,
          signal,
          log: this.#console,
        });
        // A disabled stream stays open, silent, until the server exits.
        if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve));
      } else {
        const controller = new ScrcpyController(this.#device, socket, this.#capture, {
          clipboardAutosync: options.clipboardAutosync,
          log: this.#console,
        });
        await controller.run(options.version);
      }
    } catch (error) {
      if (!signal.aborted) this.#log.debug({ err: error, role }, 'scrcpy socket ended');
    } finally {
      this.stop();
    }
  }
}
