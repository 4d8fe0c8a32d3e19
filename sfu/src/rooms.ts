// The open rooms, one per watched phone: opened on the worker with fewest rooms, kept for a grace
// after their last seat is given up (a viewer reloading the page finds the phone's stream still
// warm), and dropped when their worker dies.
import type { Logger } from 'pino';
import { CloseCode, DeviceUnavailableError, SignalClose } from './close-codes.js';
import type { FeedProvider, VideoSize } from './feed.js';
import type { SfuMetrics } from './metrics.js';
import { Room } from './room.js';
import type { WorkerPool } from './worker-pool.js';

export interface RoomsOptions {
  readonly pool: WorkerPool;
  readonly feeds: FeedProvider;
  readonly videoMaxBitrate: number;
  readonly graceMs: number;
  readonly log: Logger;
  readonly metrics: SfuMetrics;
  onVideoSize(deviceId: string, size: VideoSize): void;
  /** A room's worker died; the room is closed and forgotten already. */
  onLost(room: Room): void;
}

export class Rooms {
  readonly #options: RoomsOptions;
  readonly #rooms = new Map<string, Room>();

  constructor(options: RoomsOptions) {
    this.#options = options;
  }

  devices(): string[] {
    return [...this.#rooms.keys()];
  }

  get(deviceId: string): Room | undefined {
    return this.#rooms.get(deviceId);
  }

  /** The phone's room, opened (feed and all) if it has none; a room in its grace is kept. */
  async acquire(deviceId: string): Promise<Room> {
    const existing = this.#rooms.get(deviceId);
    if (existing && !existing.closed) {
      clearTimeout(existing.idleTimer);
      existing.idleTimer = undefined;
      return existing;
    }
    const { pool, feeds, log, metrics } = this.#options;
    const slot = pool.pick((s) => [...this.#rooms.values()].filter((r) => r.slot === s).length);
    let room: Room;
    try {
      room = await Room.open({
        deviceId,
        slot,
        feeds,
        videoMaxBitrate: this.#options.videoMaxBitrate,
        log: log.child({ deviceId }),
        onVideoSize: (size) => this.#options.onVideoSize(deviceId, size),
        onWorkerClosed: (lost) => {
          this.close(lost);
          this.#options.onLost(lost);
        },
      });
    } catch (error) {
      if (error instanceof DeviceUnavailableError)
        throw new SignalClose(CloseCode.DEVICE_GONE, error.message);
      log.error({ err: error, deviceId }, 'could not open a room');
      throw new SignalClose(CloseCode.INTERNAL, 'the phone’s stream could not be opened');
    }
    this.#rooms.set(deviceId, room);
    metrics.rooms.set(this.#rooms.size);
    log.info({ deviceId, worker: slot.index }, 'room opened');
    return room;
  }

  /** Starts the room's grace; it closes then unless `inUse` says a seat was taken meanwhile. */
  release(deviceId: string, inUse: () => boolean): void {
    const room = this.#rooms.get(deviceId);
    if (!room || room.closed || room.idleTimer || inUse()) return;
    room.idleTimer = setTimeout(() => {
      if (!inUse()) this.close(room);
    }, this.#options.graceMs);
  }

  close(room: Room): void {
    room.close();
    if (this.#rooms.get(room.deviceId) !== room) return;
    this.#rooms.delete(room.deviceId);
    this.#options.metrics.rooms.set(this.#rooms.size);
    this.#options.log.info({ deviceId: room.deviceId }, 'room closed');
  }

  closeAll(): void {
    for (const room of [...this.#rooms.values()]) this.close(room);
  }
}
