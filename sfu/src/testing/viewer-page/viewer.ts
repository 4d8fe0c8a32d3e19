/// <reference lib="dom" />
// The smallest player that speaks the sfu's signaling protocol, for tests in a real browser:
// bundled with mediasoup-client by bundle.ts and driven through `window.cphoneViewer`. It joins,
// receives video and audio, counts decoded frames (requestVideoFrameCallback), and for a CONTROL
// session opens the output channel and the input channel.
import { Device, type types } from 'mediasoup-client';

export interface ViewerStartOptions {
  readonly url: string;
  readonly token: string;
  readonly sessionId?: string;
  /** Open the input channel (a VIEW session is refused with 4403). Default: when the session may control. */
  readonly input?: boolean;
  /** Send a `report` this often, ms. Default: never. */
  readonly reportEveryMs?: number;
  /** The picture to ask for in `join` ('auto', '1080p', '720p', '480p'). Default: not sent. */
  readonly quality?: string;
}

export interface ViewerState {
  joined: Record<string, unknown> | undefined;
  frames: number;
  width: number;
  height: number;
  /** How the signaling socket closed. */
  closed: { code: number; reason: string } | undefined;
  outputs: unknown[];
  events: unknown[];
  errors: string[];
  inputOpen: boolean;
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
  outputs: [],
  events: [],
  errors: [],
  inputOpen: false,
};
let signal: Signal | undefined;
let input: types.DataProducer | undefined;
let recv: types.Transport | undefined;

function transportOptions(t: Json) {
  return {
    id: t.transportId as string,
    iceParameters: t.iceParameters as types.IceParameters,
    iceCandidates: t.iceCandidates as types.IceCandidate[],
    dtlsParameters: t.dtlsParameters as types.DtlsParameters,
    sctpParameters: t.sctpParameters as types.SctpParameters,
  };
}

async function start(options: ViewerStartOptions): Promise<Json> {
  signal = new Signal(options.url, state);
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
    transportOptions(await s.request('createTransport', { direction: 'recv' })),
  );
  recv = r;
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
  document.body.append(video);
  const onFrame = (_now: number, meta: VideoFrameCallbackMetadata) => {
    state.frames++;
    state.width = meta.width;
    state.height = meta.height;
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
      transportOptions(await s.request('createTransport', { direction: 'send' })),
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
    const timer = setInterval(() => {
      if (state.closed) clearInterval(timer);
      else void report(s);
    }, options.reportEveryMs);
  }
  return joined;
}

/** The figures a player reports: from getStats of the video receiver. */
async function report(s: Signal): Promise<void> {
  const stats = await recv?.getStats();
  let fps = 0;
  let framesDecoded = 0;
  let jitterBufferMs = 0;
  stats?.forEach((entry: Json) => {
    if (entry.type === 'inbound-rtp' && entry.kind === 'video') {
      fps = Number(entry.framesPerSecond ?? 0);
      framesDecoded = Number(entry.framesDecoded ?? 0);
      const emitted = Number(entry.jitterBufferEmittedCount ?? 0);
      jitterBufferMs = emitted ? (Number(entry.jitterBufferDelay ?? 0) / emitted) * 1000 : 0;
    }
  });
  await s.request('report', { fps, framesDecoded, jitterBufferMs }).catch(() => {});
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

const api = { start, state, sendInput, received, request, drop };
export type ViewerApi = typeof api;
(globalThis as unknown as { cphoneViewer: ViewerApi }).cphoneViewer = api;
