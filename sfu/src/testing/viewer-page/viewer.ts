/// <reference lib="dom" />
// The smallest player that speaks the sfu's signaling protocol, for tests in a real browser:
// bundled with mediasoup-client by bundle.ts and driven through `window.cphoneViewer`. It joins,
// receives video and audio, counts decoded frames (requestVideoFrameCallback), and for a CONTROL
// session opens the output channel and the input channel. With `reportEveryMs` it reports like a
// real player: its figures from getStats, a `time` round against the host's clock, and each frame
// it presented (RTP timestamp, presentation time on its clock) for the sfu to measure
// glass-to-glass latency.
import { Device, type types } from 'mediasoup-client';

export interface ViewerStartOptions {
  readonly url: string;
  readonly token: string;
  readonly sessionId?: string;
  /** Open the input channel (a VIEW session is refused with 4403). Default: when the session may control. */
  readonly input?: boolean;
  /** Send a `report` this often, ms. Default: never. */
  readonly reportEveryMs?: number;
  /** STUN/TURN servers for both transports (e.g. a stream session's ice_servers). Default: none. */
  readonly iceServers?: RTCIceServer[];
  /** 'relay' allows TURN candidates only. Default: 'all'. */
  readonly iceTransportPolicy?: RTCIceTransportPolicy;
  /** Test hook: the player's clock reads this far ahead of the machine's, ms. Default 0. */
  readonly clockSkewMs?: number;
  /**
   * Join again by itself, with the same token and session id, when the socket closes for a reason
   * that is not final (the agent restarting: 1001 or a dropped connection, 1006; a media restart,
   * 4503), as a player must. Default false.
   */
  readonly reconnect?: boolean;
  /** The picture to ask for in `join` ('auto', '1080p', '720p', '480p'). Default: not sent. */
  readonly quality?: string;
}

/** Closes after which a player joins again by itself; any other close is final. */
const RETRYABLE_CLOSES = new Set([1001, 1006, 4503]);

/** A frame the player presented, and the glass-to-glass latency the sfu worked out for it. */
export interface PresentedFrameRecord {
  readonly rtpTimestamp: number;
  /** When it was presented, on the machine's clock (epoch ms, no skew): a test's own truth. */
  readonly presentedAtMs: number;
  /** The sfu's answer: ms, null when it had none; undefined until reported. */
  glassToGlassMs?: number | null;
}

export interface ViewerState {
  joined: Record<string, unknown> | undefined;
  frames: number;
  width: number;
  height: number;
  /** How the signaling socket closed. */
  closed: { code: number; reason: string } | undefined;
  /** Joins again after a retryable close (with `reconnect`). */
  reconnects: number;
  outputs: unknown[];
  events: unknown[];
  errors: string[];
  inputOpen: boolean;
  /** The last presented frames (at most 600), once reporting. */
  presented: PresentedFrameRecord[];
  /** The sfu's estimate of host clock − player clock, and the RTT it rests on (from report answers). */
  clockOffsetMs: number | undefined;
  clockRttMs: number | undefined;
  /** The figures of the last report the sfu answered. */
  reported: { fps: number; framesDecoded: number; jitterBufferMs: number } | undefined;
  /** The receive transport's connection state ('new' until it exists). */
  connectionState: string;
  iceGatheringState: string;
  /** Its ICE candidate errors (a TURN server refusing credentials answers 401). */
  iceErrors: { code: number; url: string }[];
}

type Json = Record<string, unknown>;

class Signal {
  readonly ws: WebSocket;
  readonly #pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  #id = 1;

  constructor(
    url: string,
    readonly state: ViewerState,
  ) {
    this.ws = new WebSocket(url);
    this.ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as { id?: number; result?: Json };
      if (m.id === undefined) {
        state.events.push(m);
        return;
      }
      this.#pending.get(m.id)?.resolve(m.result ?? {});
      this.#pending.delete(m.id);
    };
    this.ws.onclose = (e) => {
      state.closed = { code: e.code, reason: e.reason };
      for (const p of this.#pending.values()) p.reject(new Error(`closed ${e.code} ${e.reason}`));
      this.#pending.clear();
    };
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error('signaling socket failed'));
    });
  }

  request(type: string, fields: Json = {}): Promise<Json> {
    const id = this.#id++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, type, ...fields }));
    });
  }
}

const state: ViewerState = {
  joined: undefined,
  frames: 0,
  width: 0,
  height: 0,
  closed: undefined,
  reconnects: 0,
  outputs: [],
  events: [],
  errors: [],
  inputOpen: false,
  presented: [],
  clockOffsetMs: undefined,
  clockRttMs: undefined,
  reported: undefined,
  connectionState: 'new',
  iceGatheringState: 'new',
  iceErrors: [],
};
let signal: Signal | undefined;
let input: types.DataProducer | undefined;
let recv: types.Transport | undefined;
let skewMs = 0;
/** The player's clock, epoch ms: what a browser whose clock is off by skewMs would read. */
const clock = () => performance.timeOrigin + performance.now() + skewMs;
/** Presented frames and clock rounds not reported yet. */
let unreported: { frames: PresentedFrameRecord[]; clockSync: Json[] } = { frames: [], clockSync: [] };

function transportOptions(t: Json, options: ViewerStartOptions) {
  return {
    ...(options.iceServers ? { iceServers: options.iceServers } : {}),
    ...(options.iceTransportPolicy ? { iceTransportPolicy: options.iceTransportPolicy } : {}),
    id: t.transportId as string,
    iceParameters: t.iceParameters as types.IceParameters,
    iceCandidates: t.iceCandidates as types.IceCandidate[],
    dtlsParameters: t.dtlsParameters as types.DtlsParameters,
    sctpParameters: t.sctpParameters as types.SctpParameters,
  };
}

async function start(options: ViewerStartOptions): Promise<Json> {
  const joined = await connect(options);
  if (options.reconnect) watch({ ...options, sessionId: joined.sessionId as string }, signal);
  return joined;
}

/** Rejoins after a retryable close of `current`, with backoff, until a join succeeds or a close is final. */
function watch(options: ViewerStartOptions, current: Signal | undefined): void {
  current?.ws.addEventListener('close', async (e) => {
    if (!RETRYABLE_CLOSES.has(e.code)) return;
    for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 2000)) {
      await new Promise((r) => setTimeout(r, delayMs));
      try {
        recv?.close();
        await connect(options);
        state.closed = undefined;
        state.reconnects++;
        watch(options, signal);
        return;
      } catch (error) {
        state.errors.push(`rejoin: ${String(error)}`);
        if (state.closed && !RETRYABLE_CLOSES.has(state.closed.code)) return;
      }
    }
  });
}

async function connect(options: ViewerStartOptions): Promise<Json> {
  signal = new Signal(options.url, state);
  skewMs = options.clockSkewMs ?? 0;
  const s = signal;
  await s.opened();
  const joined = await s.request('join', {
    token: options.token,
    ...(options.sessionId ? { sessionId: options.sessionId } : {}),
    ...(options.quality ? { quality: options.quality } : {}),
  });
  state.joined = joined;
  const device = new Device({ handlerName: 'Chrome111' });
  await device.load({ routerRtpCapabilities: joined.routerRtpCapabilities as types.RtpCapabilities });

  const r = device.createRecvTransport(
    transportOptions(await s.request('createTransport', { direction: 'recv' }), options),
  );
  recv = r;
  r.on('connectionstatechange', (connectionState) => {
    state.connectionState = connectionState;
  });
  r.on('icegatheringstatechange', (gathering) => {
    state.iceGatheringState = gathering;
  });
  r.on('icecandidateerror', (e) => state.iceErrors.push({ code: e.errorCode, url: e.url }));
  r.on('connect', ({ dtlsParameters }, ok, fail) => {
    s.request('connectTransport', { transportId: r.id, dtlsParameters }).then(() => ok(), fail);
  });
  const stream = new MediaStream();
  for (const kind of ['video', 'audio'] as const) {
    const c = await s.request('consume', { kind, rtpCapabilities: device.rtpCapabilities });
    const consumer = await r.consume({
      id: c.consumerId as string,
      producerId: c.producerId as string,
      kind,
      rtpParameters: c.rtpParameters as types.RtpParameters,
    });
    stream.addTrack(consumer.track);
    await s.request('resume', { consumerId: consumer.id });
  }
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = stream;
  (document.getElementById('screen') ?? document.body).replaceChildren(video);
  const onFrame = (_now: number, meta: VideoFrameCallbackMetadata) => {
    state.frames++;
    state.width = meta.width;
    state.height = meta.height;
    if (options.reportEveryMs && meta.rtpTimestamp !== undefined) {
      // expectedDisplayTime: when the compositor will show it, the "glass" end of glass-to-glass.
      // On a starved machine Chromium can date it from a stale begin-frame, before the frame's
      // last packet even arrived: no frame is shown before it is received (as the player does).
      const record = {
        rtpTimestamp: meta.rtpTimestamp,
        presentedAtMs: performance.timeOrigin + Math.max(meta.expectedDisplayTime, meta.receiveTime ?? 0),
      };
      state.presented.push(record);
      if (state.presented.length > 600) state.presented.shift();
      unreported.frames.push(record);
      if (unreported.frames.length > 300) unreported.frames.shift();
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  video.play().catch((e: unknown) => state.errors.push(String(e)));

  const control = joined.rights === 'control';
  if (control) {
    const d = await s.request('consumeData');
    const output = await r.consumeData({
      id: d.dataConsumerId as string,
      dataProducerId: d.dataProducerId as string,
      sctpStreamParameters: d.sctpStreamParameters as types.SctpStreamParameters,
      label: d.label as string,
      protocol: d.protocol as string,
    });
    output.on('message', (m) => state.outputs.push(JSON.parse(String(m))));
  }
  if (options.input ?? control) {
    const send = device.createSendTransport(
      transportOptions(await s.request('createTransport', { direction: 'send' }), options),
    );
    send.on('connect', ({ dtlsParameters }, ok, fail) => {
      s.request('connectTransport', { transportId: send.id, dtlsParameters }).then(() => ok(), fail);
    });
    send.on('producedata', ({ sctpStreamParameters, label }, ok, fail) => {
      s.request('produceData', { transportId: send.id, sctpStreamParameters, label }).then(
        (p) => ok({ id: p.dataProducerId as string }),
        fail,
      );
    });
    const producer = await send.produceData({ label: 'input', ordered: true });
    input = producer;
    await new Promise<void>((resolve) => {
      if (producer.readyState === 'open') resolve();
      else producer.on('open', () => resolve());
    });
    state.inputOpen = true;
  }
  if (options.reportEveryMs) {
    // A few rounds at once: the smallest RTT among them sets the first estimate.
    for (let i = 0; i < 5; i++) await timeRound(s);
    const timer = setInterval(() => {
      if (state.closed) clearInterval(timer);
      else void report(s);
    }, options.reportEveryMs);
  }
  return joined;
}

/** One NTP-style round: the player's send time, the host's time, the player's receive time. */
async function timeRound(s: Signal): Promise<void> {
  const t0 = clock();
  const { serverTimeMs } = await s.request('time');
  const t1 = clock();
  unreported.clockSync.push({ t0, serverTimeMs, t1 });
  if (unreported.clockSync.length > 16) unreported.clockSync.shift();
}

/** What a player reports: getStats of the video receiver, clock rounds, presented frames. */
async function report(s: Signal): Promise<void> {
  await timeRound(s).catch(() => {});
  const stats = await recv?.getStats();
  let fps = 0;
  let framesDecoded = 0;
  let jitterBufferMs = 0;
  stats?.forEach((entry: Json) => {
    // The video receiver that decodes: mediasoup-client's probation receiver (padding only,
    // nothing decoded) is video too, in no fixed order.
    if (
      entry.type === 'inbound-rtp' &&
      entry.kind === 'video' &&
      Number(entry.framesDecoded ?? 0) >= framesDecoded
    ) {
      fps = Number(entry.framesPerSecond ?? 0);
      framesDecoded = Number(entry.framesDecoded ?? 0);
      const emitted = Number(entry.jitterBufferEmittedCount ?? 0);
      jitterBufferMs = emitted ? (Number(entry.jitterBufferDelay ?? 0) / emitted) * 1000 : 0;
    }
  });
  const { frames, clockSync } = unreported;
  unreported = { frames: [], clockSync: [] };
  const answer = await s
    .request('report', {
      fps,
      framesDecoded,
      jitterBufferMs,
      clockSync,
      // On the player's own clock, as a browser whose clock is off would say it.
      frames: frames.map((f) => ({ rtpTimestamp: f.rtpTimestamp, presentedAtMs: f.presentedAtMs + skewMs })),
    })
    .catch(() => undefined);
  if (!answer) return;
  const latencies = answer.glassToGlassMs as (number | null)[];
  frames.forEach((f, i) => {
    f.glassToGlassMs = latencies[i] ?? null;
  });
  state.reported = { fps, framesDecoded, jitterBufferMs };
  state.clockOffsetMs = answer.clockOffsetMs as number | undefined;
  state.clockRttMs = answer.clockRttMs as number | undefined;
}

/** Packets received per kind, from the receive transport's getStats. */
async function received(): Promise<{ video: number; audio: number }> {
  const out = { video: 0, audio: 0 };
  const stats = await recv?.getStats();
  stats?.forEach((entry: Json) => {
    if (entry.type === 'inbound-rtp' && (entry.kind === 'video' || entry.kind === 'audio'))
      out[entry.kind] += Number(entry.packetsReceived ?? 0);
  });
  return out;
}

/**
 * The candidate types of the receive transport's selected ICE pair ('host', 'relay', …), and the
 * STUN/TURN server URL the local one came from.
 */
async function selectedCandidates(): Promise<
  { local: string; remote: string; localUrl?: string } | undefined
> {
  const stats = await recv?.getStats();
  const byId = new Map<unknown, Json>();
  stats?.forEach((entry: Json) => {
    byId.set(entry.id, entry);
  });
  const transport = [...byId.values()].find((e) => e.type === 'transport' && e.selectedCandidatePairId);
  const pair = byId.get(transport?.selectedCandidatePairId);
  const local = byId.get(pair?.localCandidateId);
  const remote = byId.get(pair?.remoteCandidateId);
  if (!local || !remote) return undefined;
  return {
    local: local.candidateType as string,
    remote: remote.candidateType as string,
    ...(local.url ? { localUrl: local.url as string } : {}),
  };
}

function sendInput(message: unknown): void {
  if (!input) throw new Error('no input channel');
  input.send(typeof message === 'string' ? message : JSON.stringify(message));
}

function request(type: string, fields: Json = {}): Promise<Json> {
  if (!signal) throw new Error('not started');
  return signal.request(type, fields);
}

/** Drops the socket without leaving (a network loss, as far as the sfu can tell). */
function drop(): void {
  signal?.ws.close(4000, 'dropped');
}

const api = { start, state, sendInput, received, selectedCandidates, request, drop };
export type ViewerApi = typeof api;
(globalThis as unknown as { cphoneViewer: ViewerApi }).cphoneViewer = api;
