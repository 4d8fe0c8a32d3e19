// The sfu's feeds on this host: a phone's first viewer opens a screen ingest (scrcpy over the
// phone's ADB, packetized into the room's producers) and its adaptive quality (the viewers' links
// steering the phone's encoder); the room's end closes both. Only a phone this agent runs can be
// opened, and only while it is RUNNING.
import { agentv1 } from '@cphone/proto';
import { DeviceUnavailableError, type Feed, type FeedProvider, type FeedWiring } from '@cphone/sfu';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AdbEndpoint } from '../adb/index.js';
import type { CaptureSettings, FrameInfo, ScrcpyServerBinary, ScreenDevice } from '../screen/index.js';
import { type ScreenIngest, startScreenIngest } from '../screen/index.js';
import { createQualityMetrics, FeedQuality, type QualityMetrics } from './feed-quality.js';

/** What the feeds read of the agent's phones. */
export interface PhoneDirectory {
  observed(deviceId: string): agentv1.ObservedDevice | undefined;
  adbEndpoint(deviceId: string): AdbEndpoint | undefined;
}

export interface ScreenFeedsOptions {
  readonly phones: PhoneDirectory;
  /** The ADB client of an endpoint (the agent's pool). */
  device(endpoint: AdbEndpoint): ScreenDevice;
  readonly server: ScrcpyServerBinary;
  readonly capture?: Partial<CaptureSettings>;
  /** Every frame sent, for latency telemetry. */
  onFrame?(deviceId: string, frame: FrameInfo): void;
  /** Where the quality metrics go. */
  readonly registry: Registry;
  readonly logger: Logger;
}

/** Opens one screen ingest per watched phone; `ingest(id)` reaches it for quality changes. */
export class ScreenFeeds implements FeedProvider {
  readonly #o: ScreenFeedsOptions;
  readonly #open = new Map<string, { ingest: ScreenIngest; quality: FeedQuality }>();
  readonly #metrics: QualityMetrics;

  constructor(options: ScreenFeedsOptions) {
    this.#o = options;
    this.#metrics = createQualityMetrics(options.registry);
  }

  /** The running ingest of a watched phone. */
  ingest(deviceId: string): ScreenIngest | undefined {
    return this.#open.get(deviceId)?.ingest;
  }

  open(deviceId: string, wiring: FeedWiring): Feed {
    const observed = this.#o.phones.observed(deviceId);
    const endpoint = this.#o.phones.adbEndpoint(deviceId);
    if (observed === undefined) throw new DeviceUnavailableError(`phone ${deviceId} is not on this host`);
    if (observed.state !== agentv1.DeviceState.RUNNING || endpoint === undefined) {
      const state = agentv1.DeviceState[observed.state] ?? 'UNKNOWN';
      throw new DeviceUnavailableError(`phone ${deviceId} is ${state}, not RUNNING`);
    }
    const logger = this.#o.logger.child({ deviceId });
    const ingest = startScreenIngest({
      device: this.#o.device(endpoint),
      server: this.#o.server,
      sink: wiring.sink,
      video: wiring.video,
      audio: wiring.audio,
      ...(this.#o.capture !== undefined ? { capture: this.#o.capture } : {}),
      onClipboard: (text) => wiring.onClipboard(text),
      onVideoSize: (size) => wiring.onVideoSize(size),
      onFrame: (frame) => {
        wiring.onFrame(frame);
        this.#o.onFrame?.(deviceId, frame);
      },
      logger,
    });
    const quality = new FeedQuality({
      ingest,
      metrics: this.#metrics,
      logger: logger.child({ module: 'stream-quality' }),
    });
    const open = { ingest, quality };
    this.#open.set(deviceId, open);
    return {
      requestKeyframe: () => ingest.requestKeyframe(),
      input: (message) => ingest.input(message),
      videoSize: () => ingest.videoSize,
      setViewer: (viewer) => quality.setViewer(viewer),
      removeViewer: (sessionId) => quality.removeViewer(sessionId),
      viewerLink: (sessionId, link) => quality.link(sessionId, link),
      close: async () => {
        if (this.#open.get(deviceId) === open) this.#open.delete(deviceId);
        quality.close();
        await ingest.close();
      },
    };
  }
}
