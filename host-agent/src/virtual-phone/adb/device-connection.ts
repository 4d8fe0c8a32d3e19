import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ByteTransport } from '../transport.js';
import type { AuthorizedKeys } from './auth.js';
import { DeviceStream, type StreamSink } from './device-stream.js';
import {
  ADB_VERSION_MIN,
  ADB_VERSION_SKIP_CHECKSUM,
  AdbCommand,
  type AdbPacket,
  AdbPacketError,
  AuthType,
  commandName,
  DEVICE_MAX_PAYLOAD,
  encodePacket,
  PacketDecoder,
} from './packet.js';
import type { ServiceSocket } from './service-socket.js';

/** Runs a service on an opened stream; undefined from the router means "no such service" (CLSE). */
export type ServiceHandler = (socket: ServiceSocket) => Promise<void>;
export type ServiceRouter = (service: string, connection: DeviceConnection) => ServiceHandler | undefined;

let nextConnectionId = 1;

export interface DeviceConnectionOptions {
  transport: ByteTransport;
  /** `device::ro.product.name=…;…;features=…` */
  banner: string;
  router: ServiceRouter;
  /** When set, the host must authenticate before the device answers CNXN. */
  auth?: AuthorizedKeys | undefined;
  logger: Logger;
}

type State = 'awaiting-connect' | 'awaiting-auth' | 'online';

/** The device side of one ADB transport: handshake, optional AUTH, stream multiplexing. */
export class DeviceConnection implements StreamSink {
  readonly #options: DeviceConnectionOptions;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #streams = new Map<number, DeviceStream>();
  readonly #log: Logger;
  #state: State = 'awaiting-connect';
  #token = new Uint8Array(0);
  #nextLocalId = 1;
  #alive = true;
  maxPayload = DEVICE_MAX_PAYLOAD;
  /** adbd's name for this transport in `reverse --list` (TCP transports are `host-<n>`). */
  readonly transportName = `host-${nextConnectionId++}`;
  /** `adb reverse` rules of this transport, local (phone side) -> remote (host side); gone with it. */
  readonly reverseForwards = new Map<string, string>();
  /** Resolves when the carrier is gone. */
  readonly done: Promise<void>;

  constructor(options: DeviceConnectionOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#writer = options.transport.writable.getWriter();
    this.done = this.#run();
  }

  get online(): boolean {
    return this.#state === 'online';
  }

  async #run(): Promise<void> {
    // Before CNXN adbd accepts its own maximum; after it, what both sides agreed on.
    const decoder = new PacketDecoder(() => this.maxPayload);
    const reader = this.#options.transport.readable.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const packet of decoder.push(value)) await this.#handle(packet);
      }
    } catch (error) {
      if (error instanceof AdbPacketError) {
        // adbd drops a transport that sends a malformed or oversize packet, without reading on.
        this.#log.warn({ err: error }, 'dropping adb connection: bad packet');
        this.#options.transport.destroy();
      } else {
        this.#log.debug({ err: error }, 'adb connection ended with error');
      }
    } finally {
      this.#teardown();
    }
  }

  /** Drops the connection like a dying adbd: no CLSE, the carrier just goes away. */
  destroy(): void {
    this.#teardown();
    this.#options.transport.destroy();
  }

  #teardown(): void {
    if (!this.#alive) return;
    this.#alive = false;
    for (const stream of [...this.#streams.values()]) stream.remoteClose(false);
    this.#streams.clear();
    this.#writer.close().catch(() => {});
  }

  async send(
    command: number,
    arg0: number,
    arg1: number,
    payload: Uint8Array = new Uint8Array(0),
  ): Promise<void> {
    if (!this.#alive) throw new Error('adb connection closed');
    await this.#writer.write(encodePacket({ command, arg0, arg1, payload }));
  }

  forget(localId: number): void {
    this.#streams.delete(localId);
  }

  async #handle(packet: AdbPacket): Promise<void> {
    switch (packet.command) {
      case AdbCommand.Connect:
        return this.#onConnect(packet);
      case AdbCommand.Auth:
        return this.#onAuth(packet);
      case AdbCommand.Open:
        if (this.#state === 'online') await this.#onOpen(packet);
        return;
      case AdbCommand.Okay:
        this.#streams.get(packet.arg1)?.acknowledge();
        return;
      case AdbCommand.Write:
        this.#onWrite(packet);
        return;
      case AdbCommand.Close:
        this.#streams.get(packet.arg1)?.remoteClose(this.#alive);
        return;
      default:
        this.#log.warn({ command: commandName(packet.command) }, 'ignoring unknown adb command');
    }
  }

  async #onConnect(packet: AdbPacket): Promise<void> {
    const hostVersion = packet.arg0;
    this.maxPayload = Math.min(packet.arg1 || DEVICE_MAX_PAYLOAD, DEVICE_MAX_PAYLOAD);
    this.#log.debug({ hostVersion: hostVersion.toString(16), maxPayload: this.maxPayload }, 'host connected');
    if (hostVersion < ADB_VERSION_MIN) throw new Error(`unsupported adb version ${hostVersion.toString(16)}`);
    // A new CNXN restarts the transport (adb does that after a failed handshake).
    for (const stream of [...this.#streams.values()]) stream.remoteClose(false);
    if (this.#options.auth) {
      this.#state = 'awaiting-auth';
      await this.#sendToken();
    } else {
      await this.#goOnline();
    }
  }

  async #sendToken(): Promise<void> {
    this.#token = new Uint8Array(randomBytes(20));
    await this.send(AdbCommand.Auth, AuthType.Token, 0, this.#token);
  }

  async #onAuth(packet: AdbPacket): Promise<void> {
    const auth = this.#options.auth;
    if (this.#state !== 'awaiting-auth' || !auth) return;
    if (packet.arg0 === AuthType.Signature) {
      const key = auth.verify(this.#token, packet.payload);
      if (key) {
        this.#log.info({ key: key.comment }, 'host authenticated by signature');
        await this.#goOnline();
      } else {
        // adbd answers a bad signature with a fresh token so the host can try its next key.
        await this.#sendToken();
      }
      return;
    }
    if (packet.arg0 === AuthType.RsaPublicKey) {
      const key = auth.offer(Buffer.from(packet.payload).toString('latin1'));
      if (key) {
        this.#log.info({ key: key.comment }, 'host public key accepted');
        await this.#goOnline();
      } else {
        this.#log.warn('host public key rejected; host stays unauthorized');
      }
    }
  }

  async #goOnline(): Promise<void> {
    this.#state = 'online';
    await this.send(
      AdbCommand.Connect,
      ADB_VERSION_SKIP_CHECKSUM,
      DEVICE_MAX_PAYLOAD,
      new TextEncoder().encode(this.#options.banner),
    );
  }

  async #onOpen(packet: AdbPacket): Promise<void> {
    const remoteId = packet.arg0;
    const service = new TextDecoder().decode(packet.payload).replace(/\0+$/, '');
    const handler = this.#options.router(service, this);
    if (!handler) {
      this.#log.debug({ service }, 'no such service');
      await this.send(AdbCommand.Close, 0, remoteId);
      return;
    }
    const localId = this.#nextLocalId++;
    const stream = new DeviceStream(localId, remoteId, service, this);
    this.#streams.set(localId, stream);
    await this.send(AdbCommand.Okay, localId, remoteId);
    this.#log.debug({ service, localId, remoteId }, 'stream opened');
    void handler(stream)
      .catch((error: unknown) => {
        if (!stream.isClosed) this.#log.warn({ err: error, service }, 'service failed');
      })
      .finally(() => stream.close().catch(() => {}));
  }

  #onWrite(packet: AdbPacket): void {
    const stream = this.#streams.get(packet.arg1);
    if (stream) {
      stream.deliver(packet.payload);
    } else if (this.#alive) {
      void this.send(AdbCommand.Close, 0, packet.arg0).catch(() => {});
    }
  }
}
