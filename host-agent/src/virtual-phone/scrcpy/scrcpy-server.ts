import type { Logger } from 'pino';
import type { ServiceHandler } from '../adb/device-connection.js';
import type { ServiceSocket } from '../adb/service-socket.js';
import type { AbstractSocketListener, AndroidDevice } from '../android/android-device.js';
import { ByteReader } from '../byte-reader.js';
import { controlProtocolFor, readControlMessage } from './control-decoder.js';
import { loadScreenFixture } from './h264-fixture.js';
import type { ScrcpyServerOptions } from './server-options.js';
import { streamVideo } from './video-streamer.js';

type Role = 'video' | 'audio' | 'control';
const DEVICE_NAME_LENGTH = 64;

/**
 * One running scrcpy server (forward tunnel). It accepts its sockets in scrcpy's order (video,
 * audio, control, each if enabled), sends the dummy byte on the first at once, and starts the
 * streams with the device meta once all are connected, as DesktopConnection does. It exits when
 * any socket closes or the process is killed.
 */
export class ScrcpyServerProcess implements AbstractSocketListener {
  readonly #device: AndroidDevice;
  readonly #options: ScrcpyServerOptions;
  readonly #pending: Role[];
  readonly #sockets = new Map<Role, ServiceSocket>();
  readonly #stop = new AbortController();
  readonly #log: Logger;
  #allConnected: () => void = () => {};
  readonly #connected = new Promise<void>((resolve) => {
    this.#allConnected = resolve;
  });

  constructor(device: AndroidDevice, options: ScrcpyServerOptions) {
    this.#device = device;
    this.#options = options;
    this.#log = device.logger.child({ module: 'scrcpy', scid: options.scid });
    this.#pending = [
      ...(options.video ? (['video'] as const) : []),
      ...(options.audio ? (['audio'] as const) : []),
      ...(options.control ? (['control'] as const) : []),
    ];
  }

  /** Aborted when the server exits. */
  get stopped(): AbortSignal {
    return this.#stop.signal;
  }

  stop(): void {
    this.#stop.abort();
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
    try {
      if (role === 'video') {
        await streamVideo(socket, loadScreenFixture(), { ...this.#options, signal });
      } else if (role === 'audio') {
        // No audio source here: scrcpy then sends codec id 0 ("disabled") and ends the stream.
        await socket.write(new Uint8Array(4));
        await socket.close();
      } else {
        const reader = new ByteReader(socket);
        const protocol = controlProtocolFor(this.#options.version);
        for (
          let message = await readControlMessage(reader, protocol);
          message;
          message = await readControlMessage(reader, protocol)
        ) {
          this.#device.events.recordControl(message);
        }
      }
    } catch (error) {
      if (!signal.aborted) this.#log.debug({ err: error, role }, 'scrcpy socket ended');
    } finally {
      if (role !== 'audio') this.stop();
    }
  }
}
