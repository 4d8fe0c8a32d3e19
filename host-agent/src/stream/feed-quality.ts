// One watched phone's adaptive quality: its viewers and their links (from the sfu, through the
// feed) go into a QualityController, and what it decides goes to the phone's screen ingest.
import type { FeedViewer, ViewerLink } from '@cphone/sfu';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CaptureSettings } from '../screen/index.js';
import { type QualityChange, QualityController, type QualityControllerOptions } from './quality.js';

export interface QualityMetrics {
  readonly changes: Counter<'cause'>;
  readonly feeds: Gauge<'rung'>;
  readonly targetBitrate: Gauge;
}

export function createQualityMetrics(registry: Registry): QualityMetrics {
  return {
    changes: new Counter({
      name: 'cphone_stream_quality_changes_total',
      help: 'Capture changes the quality controller made, by cause (bandwidth, loss, recovered, preset)',
      labelNames: ['cause'] as const,
      registers: [registry],
    }),
    feeds: new Gauge({
      name: 'cphone_stream_quality_feeds',
      help: 'Watched phones by the rung they capture at (1080p30, 720p30, 480p15, ...)',
      labelNames: ['rung'] as const,
      registers: [registry],
    }),
    targetBitrate: new Gauge({
      name: 'cphone_stream_target_bitrate_bps',
      help: 'Video bit rate the watched phones of this host are asked to encode, summed, bits/s',
      registers: [registry],
    }),
  };
}

/** What FeedQuality drives: the ingest's settings now, and a change to them. */
export interface QualityTarget {
  readonly capture: CaptureSettings;
  reconfigure(changes: Partial<CaptureSettings>): Promise<void>;
}

export interface FeedQualityOptions {
  readonly ingest: QualityTarget;
  readonly metrics: QualityMetrics;
  readonly logger: Logger;
  /** Tuning of the controller (tests); its initial settings are the ingest's. */
  readonly controller?: Omit<QualityControllerOptions, 'initial'>;
}

export class FeedQuality {
  readonly #ingest: QualityTarget;
  readonly #metrics: QualityMetrics;
  readonly #log: Logger;
  readonly #controller: QualityController;
  #closed = false;

  constructor({ ingest, metrics, logger, controller }: FeedQualityOptions) {
    this.#ingest = ingest;
    this.#metrics = metrics;
    this.#log = logger;
    const { maxSize, maxFps, videoBitRate } = ingest.capture;
    this.#controller = new QualityController({ ...controller, initial: { maxSize, maxFps, videoBitRate } });
    metrics.feeds.inc({ rung: this.#controller.rung });
    metrics.targetBitrate.inc(videoBitRate);
  }

  get rung(): string {
    return this.#controller.rung;
  }

  /** A viewer joined or asked for another quality: a preset applies at once. */
  setViewer(viewer: FeedViewer): void {
    this.#controller.setViewer(viewer.sessionId, { rights: viewer.rights, preset: viewer.quality });
    this.#evaluate();
  }

  /** A viewer left: the presets in force may widen. */
  removeViewer(sessionId: string): void {
    this.#controller.removeViewer(sessionId);
    this.#evaluate();
  }

  /** A look at a viewer's link (about once a second each): the moment to decide. */
  link(sessionId: string, link: ViewerLink): void {
    this.#controller.report(sessionId, {
      availableBitrate: link.availableBitrate,
      lossFraction: link.lossFraction,
      sendBitrate: link.sendBitrate,
    });
    this.#evaluate();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#metrics.feeds.dec({ rung: this.#controller.rung });
    this.#metrics.targetBitrate.dec(this.#controller.capture.videoBitRate);
  }

  #evaluate(): void {
    if (this.#closed) return;
    const before = { rung: this.#controller.rung, bitRate: this.#controller.capture.videoBitRate };
    const change = this.#controller.evaluate();
    if (change) this.#apply(change, before);
  }

  #apply(change: QualityChange, before: { rung: string; bitRate: number }): void {
    const { capture, rung, cause } = change;
    this.#metrics.changes.inc({ cause });
    this.#metrics.feeds.dec({ rung: before.rung });
    this.#metrics.feeds.inc({ rung });
    this.#metrics.targetBitrate.inc(capture.videoBitRate - before.bitRate);
    this.#log.info(
      { rung, cause, from: before.rung, capture, ...(change.viewer ? { sessionId: change.viewer } : {}) },
      'stream quality changed',
    );
    this.#ingest.reconfigure(capture).catch((error: unknown) => {
      this.#log.warn({ err: error, capture }, 'the phone did not take the new capture settings');
    });
  }
}
