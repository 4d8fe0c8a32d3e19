// A FeedProvider for tests: every phone streams the committed recordings in a loop at their real
// rate, answers key frame requests by jumping to the next IDR, and records what reaches it. Each
// frame's capture time is the moment it is sent, less `captureDelayMs`: a phone whose latency
// before the sfu is known exactly.
import type { Feed, FeedProvider, FeedViewer, FeedWiring, VideoSize, ViewerLink } from '../feed.js';
import type { ViewerInput } from '../input.js';
import { hostTimeMs } from '../latency.js';
import {
  FIXTURE_FPS,
  type H264Recording,
  loadH264Recording,
  loadOpusPackets,
  OPUS_PACKET_MS,
  RtpPacketizer,
} from './media-fixtures.js';

export interface FixtureFeed {
  readonly deviceId: string;
  readonly wiring: FeedWiring;
  readonly inputs: ViewerInput[];
  keyframeRequests: number;
  closed: boolean;
  /** Video frames and audio packets sent so far. */
  videoFrames: number;
  audioPackets: number;
  /** The capture time (host clock, ms) each recent frame was stamped with, by RTP timestamp. */
  readonly captureTimes: Map<number, number>;
  /** The viewers joined now, by session id (setViewer / removeViewer). */
  readonly viewers: Map<string, FeedViewer>;
  /** Every link figure the sfu gave, in order. */
  readonly links: { sessionId: string; link: ViewerLink; at: number }[];
}

export interface FixtureFeedsOptions {
  /** Refuse to open (e.g. throw DeviceUnavailableError) for some devices. */
  open?(deviceId: string): void;
  /** How long the phone takes to take an input. Default: at once. */
  inputDelayMs?: number;
  /** How long before it is sent each frame is said to have been captured, ms. Default 0. */
  captureDelayMs?: number;
}

export class FixtureFeeds implements FeedProvider {
  readonly #options: FixtureFeedsOptions;
  readonly #video: H264Recording = loadH264Recording();
  readonly #audio: Uint8Array[] = loadOpusPackets();
  /** Every feed opened, in order; open ones have `closed` false. */
  readonly feeds: FixtureFeed[] = [];

  constructor(options: FixtureFeedsOptions = {}) {
    this.#options = options;
  }

  /** The feeds of a device, latest last. */
  of(deviceId: string): FixtureFeed[] {
    return this.feeds.filter((f) => f.deviceId === deviceId);
  }

  /** The feeds open now. */
  get live(): FixtureFeed[] {
    return this.feeds.filter((f) => !f.closed);
  }

  open(deviceId: string, wiring: FeedWiring): Feed {
    this.#options.open?.(deviceId);
    const recording = this.#video;
    const audio = this.#audio;
    const state: FixtureFeed = {
      deviceId,
      wiring,
      inputs: [],
      keyframeRequests: 0,
      closed: false,
      videoFrames: 0,
      audioPackets: 0,
      captureTimes: new Map(),
      viewers: new Map(),
      links: [],
    };
    const captureDelayMs = this.#options.captureDelayMs ?? 0;
    this.feeds.push(state);
    const video = new RtpPacketizer(wiring.video.ssrc, wiring.video.payloadType);
    const sound = new RtpPacketizer(wiring.audio.ssrc, wiring.audio.payloadType);
    const size: VideoSize = { width: recording.width, height: recording.height };
    let index = 0;
    let jump = false;
    const videoBase = Math.floor(Math.random() * 2 ** 32);
    const audioBase = Math.floor(Math.random() * 2 ** 32);
    const started = performance.now();
    const videoTimer = setInterval(() => {
      if (jump) {
        const next = recording.frames.findIndex((f, i) => i >= index && f.keyframe);
        index = Math.max(next, 0);
        jump = false;
      }
      const frame = recording.frames[index % recording.frames.length]!;
      index = (index + 1) % recording.frames.length;
      const timestamp = videoBase + Math.round(((performance.now() - started) * 90_000) / 1000);
      const captureTimeMs = hostTimeMs() - captureDelayMs;
      for (const packet of video.h264(frame, timestamp)) wiring.sink.sendVideoRtp(packet);
      wiring.onFrame({ rtpTimestamp: timestamp >>> 0, captureTimeMs });
      state.captureTimes.set(timestamp >>> 0, captureTimeMs);
      if (state.captureTimes.size > 1000) state.captureTimes.delete(state.captureTimes.keys().next().value!);
      if (state.videoFrames === 0) wiring.onVideoSize(size);
      state.videoFrames++;
    }, 1000 / FIXTURE_FPS);
    const audioTimer = setInterval(() => {
      const packet = audio[state.audioPackets % audio.length]!;
      const timestamp = audioBase + state.audioPackets * 48 * OPUS_PACKET_MS;
      wiring.sink.sendAudioRtp(sound.packet(packet, timestamp, state.audioPackets === 0));
      state.audioPackets++;
    }, OPUS_PACKET_MS);
    const inputDelayMs = this.#options.inputDelayMs ?? 0;
    return {
      requestKeyframe: () => {
        state.keyframeRequests++;
        jump = true;
      },
      input: async (message) => {
        if (inputDelayMs) await new Promise((resolve) => setTimeout(resolve, inputDelayMs));
        state.inputs.push(message);
      },
      videoSize: () => (state.videoFrames > 0 ? size : undefined),
      setViewer: (viewer) => state.viewers.set(viewer.sessionId, viewer),
      removeViewer: (sessionId) => state.viewers.delete(sessionId),
      viewerLink: (sessionId, link) => state.links.push({ sessionId, link, at: performance.now() }),
      close: () => {
        state.closed = true;
        clearInterval(videoTimer);
        clearInterval(audioTimer);
      },
    };
  }
}
