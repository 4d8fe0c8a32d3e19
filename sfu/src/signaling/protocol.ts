// The signaling protocol: JSON text frames. A viewer sends requests `{ id, type, ...fields }`; the
// sfu answers each with `{ id, result }` in order, or closes the socket with a code from
// close-codes.ts (there are no error answers: a refused or broken request ends the socket). The sfu
// also sends events `{ event, ... }` without an id. mediasoup's own parameter objects (DTLS, RTP
// capabilities, SCTP) are checked here for shape only; mediasoup checks their content.
import { CloseCode, SignalClose } from '../close-codes.js';
import type { ClockSample, PresentedFrame } from '../latency.js';

/** The largest signaling message accepted (a browser's RTP capabilities are ~10 KiB): larger closes with 4400. */
export const MAX_SIGNAL_BYTES = 64 * 1024;
/** Frames larger than this are not even read: ws closes the socket with 1009. */
export const MAX_SIGNAL_FRAME_BYTES = 4 * MAX_SIGNAL_BYTES;

/** Glass-to-glass samples, or presented frames, one `report` may carry. */
export const MAX_REPORT_SAMPLES = 300;
/** Clock rounds one `report` may carry. */
export const MAX_CLOCK_SAMPLES = 16;

/**
 * The picture a session asks for: 'auto' follows its link; a size is held whatever the link
 * (only the frame rate and bit rate give way). The phone has one encoder, so the agent decides
 * among its viewers' asks (the host agent's quality controller).
 */
export const QUALITY_PRESETS = ['auto', '1080p', '720p', '480p'] as const;
export type QualityPreset = (typeof QUALITY_PRESETS)[number];

type Json = Record<string, unknown>;

export type Request =
  | { id: number; type: 'join'; token: string; sessionId?: string; quality?: QualityPreset }
  | { id: number; type: 'createTransport'; direction: 'recv' | 'send' }
  | { id: number; type: 'connectTransport'; transportId: string; dtlsParameters: Json }
  | { id: number; type: 'consume'; kind: 'video' | 'audio'; rtpCapabilities: Json }
  | { id: number; type: 'resume'; consumerId: string }
  | { id: number; type: 'consumeData' }
  | { id: number; type: 'produceData'; transportId: string; sctpStreamParameters: Json; label: 'input' }
  | { id: number; type: 'report'; report: ClientReport }
  | { id: number; type: 'time' }
  | { id: number; type: 'stats' }
  | { id: number; type: 'setQuality'; quality: QualityPreset }
  | { id: number; type: 'leave' };

export type RequestType = Request['type'];

/** What a player measures and reports (from its RTCPeerConnection.getStats and frame callbacks). */
export interface ClientReport {
  /** Frames per second decoded. */
  readonly fps?: number;
  /** Frames decoded since the video consumer started. */
  readonly framesDecoded?: number;
  /** Average jitter buffer delay (jitterBufferDelay / jitterBufferEmittedCount), ms. */
  readonly jitterBufferMs?: number;
  /** Time to first frame: from the player's connect() to its first decoded frame, ms. */
  readonly firstFrameMs?: number;
  /** Glass-to-glass latencies the player measured itself since the last report, ms. */
  readonly glassToGlassMs?: readonly number[];
  /** Frames presented since the last report (the sfu works out their glass-to-glass latency). */
  readonly frames?: readonly PresentedFrame[];
  /** `time` rounds since the last report: the player's clock against the host's. */
  readonly clockSync?: readonly ClockSample[];
}

/** The answer to a `report`. */
export interface ReportResult {
  /** Per presented frame, in order: its glass-to-glass latency, ms, or null when none could be worked out. */
  readonly glassToGlassMs: (number | null)[];
  /** Host clock − player clock, ms, as estimated so far (absent before a clock round). */
  readonly clockOffsetMs?: number;
  /** The RTT of the round the estimate comes from, ms: twice its worst-case error. */
  readonly clockRttMs?: number;
}

export function badMessage(message: string): SignalClose {
  return new SignalClose(CloseCode.BAD_MESSAGE, message);
}

function str(m: Json, field: string, maxLength = 4096): string {
  const v = m[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength)
    throw badMessage(`${field} must be a non-empty string`);
  return v;
}

function obj(m: Json, field: string): Json {
  const v = m[field];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badMessage(`${field} must be an object`);
  return v as Json;
}

function oneOf<T extends string>(m: Json, field: string, values: readonly T[]): T {
  const v = m[field];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
    throw badMessage(`${field} must be one of ${values.join(', ')}`);
  return v as T;
}

function figure(m: Json, field: string, max: number): number | undefined {
  const v = m[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max)
    throw badMessage(`${field} must be a number in 0..${max}`);
  return v;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** An optional list of at most `max` objects, each checked by `item` (undefined: malformed). */
function list<T>(
  m: Json,
  field: string,
  max: number,
  shape: string,
  item: (v: Json) => T | undefined,
): T[] | undefined {
  const v = m[field];
  if (v === undefined) return undefined;
  const what = `${field} must be at most ${max} objects ${shape}`;
  if (!Array.isArray(v) || v.length > max) throw badMessage(what);
  return v.map((entry) => {
    const parsed =
      typeof entry === 'object' && entry !== null && !Array.isArray(entry) ? item(entry as Json) : undefined;
    if (parsed === undefined) throw badMessage(what);
    return parsed;
  });
}

function report(m: Json): ClientReport {
  const samples = m.glassToGlassMs;
  if (
    samples !== undefined &&
    (!Array.isArray(samples) ||
      samples.length > MAX_REPORT_SAMPLES ||
      !samples.every((s) => typeof s === 'number' && Number.isFinite(s) && s >= 0 && s <= 60_000))
  ) {
    throw badMessage(`glassToGlassMs must be at most ${MAX_REPORT_SAMPLES} numbers in 0..60000`);
  }
  const fps = figure(m, 'fps', 1000);
  const framesDecoded = figure(m, 'framesDecoded', Number.MAX_SAFE_INTEGER);
  const jitterBufferMs = figure(m, 'jitterBufferMs', 60_000);
  const firstFrameMs = figure(m, 'firstFrameMs', 600_000);
  const frames = list(
    m,
    'frames',
    MAX_REPORT_SAMPLES,
    '{ rtpTimestamp (0..2^32-1), presentedAtMs }',
    ({ rtpTimestamp, presentedAtMs }) =>
      finite(rtpTimestamp) &&
      Number.isInteger(rtpTimestamp) &&
      rtpTimestamp >= 0 &&
      rtpTimestamp <= 0xffff_ffff &&
      finite(presentedAtMs)
        ? { rtpTimestamp, presentedAtMs }
        : undefined,
  );
  const clockSync = list(
    m,
    'clockSync',
    MAX_CLOCK_SAMPLES,
    '{ t0, serverTimeMs, t1 }',
    ({ t0, serverTimeMs, t1 }) =>
      finite(t0) && finite(serverTimeMs) && finite(t1) ? { t0, serverTimeMs, t1 } : undefined,
  );
  return {
    ...(fps !== undefined ? { fps } : {}),
    ...(framesDecoded !== undefined ? { framesDecoded } : {}),
    ...(jitterBufferMs !== undefined ? { jitterBufferMs } : {}),
    ...(firstFrameMs !== undefined ? { firstFrameMs } : {}),
    ...(samples !== undefined ? { glassToGlassMs: samples as number[] } : {}),
    ...(frames !== undefined ? { frames } : {}),
    ...(clockSync !== undefined ? { clockSync } : {}),
  };
}

/** One text frame as a request; throws SignalClose(BAD_MESSAGE) saying what was wrong. */
export function parseRequest(raw: string): Request {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badMessage('a message must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw badMessage('a message must be a JSON object');
  const m = parsed as Json;
  const id = m.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0)
    throw badMessage('id must be a non-negative integer');
  switch (m.type) {
    case 'join': {
      const sessionId = m.sessionId === undefined ? undefined : str(m, 'sessionId', 200);
      const quality = m.quality === undefined ? undefined : oneOf(m, 'quality', QUALITY_PRESETS);
      return {
        id,
        type: 'join',
        token: str(m, 'token', 8192),
        ...(sessionId ? { sessionId } : {}),
        ...(quality ? { quality } : {}),
      };
    }
    case 'createTransport':
      return { id, type: 'createTransport', direction: oneOf(m, 'direction', ['recv', 'send'] as const) };
    case 'connectTransport':
      return {
        id,
        type: 'connectTransport',
        transportId: str(m, 'transportId', 100),
        dtlsParameters: obj(m, 'dtlsParameters'),
      };
    case 'consume':
      return {
        id,
        type: 'consume',
        kind: oneOf(m, 'kind', ['video', 'audio'] as const),
        rtpCapabilities: obj(m, 'rtpCapabilities'),
      };
    case 'resume':
      return { id, type: 'resume', consumerId: str(m, 'consumerId', 100) };
    case 'consumeData':
      return { id, type: 'consumeData' };
    case 'produceData':
      return {
        id,
        type: 'produceData',
        transportId: str(m, 'transportId', 100),
        sctpStreamParameters: obj(m, 'sctpStreamParameters'),
        label: oneOf(m, 'label', ['input'] as const),
      };
    case 'report':
      return { id, type: 'report', report: report(m) };
    case 'time':
      return { id, type: 'time' };
    case 'stats':
      return { id, type: 'stats' };
    case 'setQuality':
      return { id, type: 'setQuality', quality: oneOf(m, 'quality', QUALITY_PRESETS) };
    case 'leave':
      return { id, type: 'leave' };
    default:
      throw badMessage(
        'type must be one of join, createTransport, connectTransport, consume, resume, consumeData, produceData, report, time, stats, setQuality, leave',
      );
  }
}
