// The ingest's share of stream telemetry: what the phones send before the sfu sees it. The viewer
// side (glass-to-glass, fps, bitrate, loss, RTT, jitter buffer) is the sfu's, on the same registry.
// No device label: a host's figures are what an operator compares across hosts; a phone's own are
// in its sessions' reports (ListStreamSessions).
import { Counter, Histogram, type Registry } from 'prom-client';
import type { FrameInfo } from '../screen/index.js';

export interface StreamTelemetry {
  /** A frame the ingest sent (ScreenFeeds' onFrame). */
  frame(frame: FrameInfo): void;
}

export function createStreamTelemetry(registry: Registry): StreamTelemetry {
  const registers = [registry];
  const frames = new Counter({
    name: 'cphone_stream_ingest_frames_total',
    help: 'Video frames the screen ingest sent to the sfu, by kind (key, delta)',
    labelNames: ['kind'] as const,
    registers,
  });
  const bytes = new Counter({
    name: 'cphone_stream_ingest_bytes_total',
    help: 'Bytes of H.264 the screen ingest sent to the sfu',
    registers,
  });
  const lag = new Histogram({
    name: 'cphone_stream_ingest_lag_seconds',
    help:
      'How much later than its session’s fastest frame a frame reached the agent (encoder and ADB ' +
      'delay beyond the best case); part of every glass-to-glass figure',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  });
  return {
    frame(frame) {
      frames.inc({ kind: frame.keyframe ? 'key' : 'delta' });
      bytes.inc(frame.bytes);
      lag.observe(Math.max(0, frame.receivedTimeMs - frame.captureTimeMs) / 1000);
    },
  };
}
