// One watched phone: a mediasoup Router on one worker, a DirectTransport the feed's RTP enters by
// (in-process, no UDP hop), a video and an audio Producer on it, a DataProducer for what the phone
// says back (clipboard) that CONTROL viewers consume, and the feed itself.
import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import type { Logger } from 'pino';
import {
  AUDIO_PAYLOAD_TYPE,
  audioRtpParameters,
  MEDIA_CODECS,
  VIDEO_PAYLOAD_TYPE,
  videoRtpParameters,
} from './codecs.js';
import type { Feed, FeedProvider, FeedViewer, VideoSize, ViewerLink } from './feed.js';
import type { PhoneOutput } from './input.js';
import { FrameTimes } from './latency.js';
import type { WorkerSlot } from './worker-pool.js';

/** Messages the sfu relays between viewers and the phone: a clipboard of 64 KiB plus framing. */
const MAX_DATA_MESSAGE_BYTES = 256 * 1024;

export interface RoomOptions {
  readonly deviceId: string;
  readonly slot: WorkerSlot;
  readonly feeds: FeedProvider;
  /** The video's declared ceiling (SfuOptions.videoMaxBitrate). */
  readonly videoMaxBitrate: number;
  readonly log: Logger;
  onVideoSize(size: VideoSize): void;
  /** The worker under the room went away: the room is closed already. */
  onWorkerClosed(room: Room): void;
}

export class Room {
  readonly deviceId: string;
  readonly slot: WorkerSlot;
  /** The worker's WebRtcServer the room's viewer transports listen on. */
  readonly server: types.WebRtcServer;
  readonly router: types.Router;
  readonly direct: types.DirectTransport;
  readonly video: types.Producer;
  readonly audio: types.Producer;
  readonly output: types.DataProducer;
  /** Capture times of the frames sent lately, by RTP timestamp (glass-to-glass latency). */
  readonly frames = new FrameTimes();
  /** The video's declared ceiling, bits/s: where viewers' bandwidth estimates start. */
  readonly videoMaxBitrate: number;
  readonly #log: Logger;
  #feed: Feed | undefined;
  #closed = false;
  /** Closes the room once no seat is held for the grace period. */
  idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    options: RoomOptions,
    media: {
      router: types.Router;
      direct: types.DirectTransport;
      video: types.Producer;
      audio: types.Producer;
      output: types.DataProducer;
    },
  ) {
    this.deviceId = options.deviceId;
    this.slot = options.slot;
    this.server = options.slot.server;
    this.videoMaxBitrate = options.videoMaxBitrate;
    this.#log = options.log;
    ({
      router: this.router,
      direct: this.direct,
      video: this.video,
      audio: this.audio,
      output: this.output,
    } = media);
  }

  static async open(options: RoomOptions): Promise<Room> {
    const { slot, deviceId, feeds } = options;
    const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { deviceId } });
    let room: Room | undefined;
    try {
      const direct = await router.createDirectTransport({ maxMessageSize: MAX_DATA_MESSAGE_BYTES });
      const videoSsrc = randomInt(1, 0xffff_ffff);
      const audioSsrc = randomInt(1, 0xffff_ffff);
      const video = await direct.produce({
        kind: 'video',
        rtpParameters: videoRtpParameters(videoSsrc, options.videoMaxBitrate),
      });
      const audio = await direct.produce({ kind: 'audio', rtpParameters: audioRtpParameters(audioSsrc) });
      const output = await direct.produceData({ label: 'output' });
      room = new Room(options, { router, direct, video, audio, output });
      const opened = room;
      // mediasoup turns viewers' PLI and FIR (and its own requests) into a PLI on the producer's
      // stream; on a DirectTransport nothing would answer it but the feed.
      await video.enableTraceEvent(['pli', 'fir']);
      video.on('trace', (trace) => {
        if (trace.type === 'pli' || trace.type === 'fir') opened.requestKeyframe();
      });
      router.once('workerclose', () => {
        if (opened.#closed) return;
        opened.close();
        options.onWorkerClosed(opened);
      });
      const feed = await feeds.open(deviceId, {
        video: { ssrc: videoSsrc, payloadType: VIDEO_PAYLOAD_TYPE },
        audio: { ssrc: audioSsrc, payloadType: AUDIO_PAYLOAD_TYPE },
        sink: {
          sendVideoRtp: (packet) => opened.#send(video, packet),
          sendAudioRtp: (packet) => opened.#send(audio, packet),
        },
        onClipboard: (text) => opened.send({ type: 'clipboard', text }),
        onVideoSize: (size) => {
          if (!opened.#closed) options.onVideoSize(size);
        },
        onFrame: (frame) => opened.frames.add(frame),
      });
      if (room.#closed) {
        await feed.close();
        throw new Error('the room closed while its feed opened');
      }
      room.#feed = feed;
      return room;
    } catch (error) {
      if (room) room.#closed = true;
      router.close();
      throw error;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  get feed(): Feed {
    if (!this.#feed) throw new Error('the room has no feed');
    return this.#feed;
  }

  requestKeyframe(): void {
    if (this.#closed || !this.#feed) return;
    try {
      this.#feed.requestKeyframe();
    } catch (error) {
      this.#log.warn({ err: error }, 'feed refused a key frame request');
    }
  }

  videoSize(): VideoSize | undefined {
    return this.#feed?.videoSize();
  }

  /** Whether the feed takes viewers' link figures (sampling them costs two stats requests each). */
  get followsLinks(): boolean {
    return !this.#closed && this.#feed?.viewerLink !== undefined;
  }

  setViewer(viewer: FeedViewer): void {
    this.#tell('setViewer', (feed) => feed.setViewer?.(viewer));
  }

  removeViewer(sessionId: string): void {
    this.#tell('removeViewer', (feed) => feed.removeViewer?.(sessionId));
  }

  viewerLink(sessionId: string, link: ViewerLink): void {
    this.#tell('viewerLink', (feed) => feed.viewerLink?.(sessionId, link));
  }

  /** Sends the phone's output to every CONTROL viewer (they consume `output`). */
  send(message: PhoneOutput): void {
    if (this.#closed || this.output.closed) return;
    this.output.send(JSON.stringify(message));
  }

  /** Closes the feed and the router (which closes every transport, producer and consumer on it). */
  close(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.#closed) return;
    this.#closed = true;
    const feed = this.#feed;
    this.#feed = undefined;
    if (feed) {
      Promise.resolve()
        .then(() => feed.close())
        .catch((error: unknown) => this.#log.warn({ err: error }, 'feed failed to close'));
    }
    this.router.close();
  }

  /** What the feed makes of its viewers is its own business: a failure is logged, never the sfu's. */
  #tell(what: string, call: (feed: Feed) => void): void {
    if (this.#closed || !this.#feed) return;
    try {
      call(this.#feed);
    } catch (error) {
      this.#log.warn({ err: error, call: what }, 'feed failed to take viewer news');
    }
  }

  #send(producer: types.Producer, packet: Uint8Array): void {
    if (this.#closed || producer.closed) return;
    producer.send(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
  }
}
