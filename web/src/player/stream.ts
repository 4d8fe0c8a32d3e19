// One join of a stream session over one signaling socket: media in (video, audio), the output
// channel and, unless view-only, the input channel; then a report every second (the player's
// figures, clock rounds and presented frames, for glass-to-glass latency, and its time to first
// frame). A reconnect is a new StreamConnection; element.ts decides when.
import { Device, type types } from 'mediasoup-client';
import { type Json, Signal } from './signal.js';

export interface StreamSession {
  readonly sfuUrl: string;
  readonly token: string;
  readonly iceServers?: readonly RTCIceServer[];
  readonly sessionId?: string;
}

export interface ConnectionHandlers {
  onVideoSize(width: number, height: number): void;
  onOutput(message: Json): void;
  onClose(code: number, reason: string): void;
}

/** What the player measured, shown in its stats overlay. */
export interface LiveFigures {
  fps: number;
  bitrateBps: number;
  rttMs: number;
  loss: number;
  glassToGlassMs: number | undefined;
}

const REPORT_EVERY_MS = 1000;

export class StreamConnection {
  readonly signal: Signal;
  readonly stream = new MediaStream();
  joined: Json | undefined;
  #recv: types.Transport | undefined;
  #send: types.Transport | undefined;
  #input: types.DataProducer | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #frames: { rtpTimestamp: number; presentedAtMs: number }[] = [];
  #clockSync: Json[] = [];
  #last: { at: number; bytes: number } | undefined;
  /** The player's time to first frame, reported with every report once known. */
  firstFrameMs: number | undefined;
  readonly figures: LiveFigures = { fps: 0, bitrateBps: 0, rttMs: 0, loss: 0, glassToGlassMs: undefined };

  constructor(
    readonly session: StreamSession,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.signal = new Signal(
      session.sfuUrl,
      (event) => {
        if (event.event === 'videoSize') handlers.onVideoSize(Number(event.width), Number(event.height));
      },
      (code, reason) => {
        clearInterval(this.#timer);
        handlers.onClose(code, reason);
      },
    );
  }

  get inputOpen(): boolean {
    return this.#input?.readyState === 'open';
  }

  /** Joins and sets up media; rejects (and the socket's close says why) when the sfu refuses. */
  async start(options: { quality: string; input: boolean }): Promise<Json> {
    const s = this.signal;
    await s.opened();
    const joined = await s.request('join', {
      token: this.session.token,
      ...(this.session.sessionId ? { sessionId: this.session.sessionId } : {}),
      quality: options.quality,
    });
    this.joined = joined;
    const size = joined.videoSize as { width?: number; height?: number } | undefined;
    if (size?.width && size.height) this.handlers.onVideoSize(size.width, size.height);
    const device = new Device();
    await device.load({ routerRtpCapabilities: joined.routerRtpCapabilities as types.RtpCapabilities });
    const recv = device.createRecvTransport(
      this.#transportOptions(await s.request('createTransport', { direction: 'recv' })),
    );
    this.#recv = recv;
    recv.on('connect', ({ dtlsParameters }, ok, fail) => {
      s.request('connectTransport', { transportId: recv.id, dtlsParameters }).then(() => ok(), fail);
    });
    for (const kind of ['video', 'audio'] as const) {
      const c = await s.request('consume', { kind, rtpCapabilities: device.rtpCapabilities });
      const consumer = await recv.consume({
        id: c.consumerId as string,
        producerId: c.producerId as string,
        kind,
        rtpParameters: c.rtpParameters as types.RtpParameters,
      });
      this.stream.addTrack(consumer.track);
      await s.request('resume', { consumerId: consumer.id });
    }
    const control = joined.rights === 'control' && options.input;
    if (control) {
      const d = await s.request('consumeData');
      const output = await recv.consumeData({
        id: d.dataConsumerId as string,
        dataProducerId: d.dataProducerId as string,
        sctpStreamParameters: d.sctpStreamParameters as types.SctpStreamParameters,
        label: d.label as string,
        protocol: d.protocol as string,
      });
      output.on('message', (m) => {
        try {
          this.handlers.onOutput(JSON.parse(String(m)) as Json);
        } catch {}
      });
      const send = device.createSendTransport(
        this.#transportOptions(await s.request('createTransport', { direction: 'send' })),
      );
      this.#send = send;
      send.on('connect', ({ dtlsParameters }, ok, fail) => {
        s.request('connectTransport', { transportId: send.id, dtlsParameters }).then(() => ok(), fail);
      });
      send.on('producedata', ({ sctpStreamParameters, label }, ok, fail) => {
        s.request('produceData', { transportId: send.id, sctpStreamParameters, label }).then(
          (p) => ok({ id: p.dataProducerId as string }),
          fail,
        );
      });
      const input = await send.produceData({ label: 'input', ordered: true });
      this.#input = input;
      await new Promise<void>((resolve) => {
        if (input.readyState === 'open') resolve();
        else input.on('open', () => resolve());
      });
    }
    // A few clock rounds at once: the smallest RTT among them sets the first estimate.
    for (let i = 0; i < 3; i++) await this.#timeRound();
    this.#timer = setInterval(() => void this.#report(), REPORT_EVERY_MS);
    return joined;
  }

  /**
   * A presented frame (requestVideoFrameCallback), for the sfu to measure its glass-to-glass
   * latency; `shownAt` is on performance.now's clock.
   */
  presented(rtpTimestamp: number | undefined, shownAt: number): void {
    if (rtpTimestamp === undefined) return;
    this.#frames.push({ rtpTimestamp, presentedAtMs: performance.timeOrigin + shownAt });
    if (this.#frames.length > 300) this.#frames.shift();
  }

  /** Sends one input message; false when there is no open input channel. */
  /** Bytes queued on the input channel and not yet sent. */
  get inputBacklog(): number {
    return this.#input?.bufferedAmount ?? 0;
  }

  send(message: Json): boolean {
    if (!this.inputOpen) return false;
    this.#input?.send(JSON.stringify(message));
    return true;
  }

  setQuality(quality: string): Promise<Json> {
    return this.signal.request('setQuality', { quality });
  }

  /** Leaves the session (the sfu closes with 1000) and tears the transports down. */
  leave(): void {
    clearInterval(this.#timer);
    this.signal.request('leave').catch(() => undefined);
    // The sfu closes after a leave; a socket that does not close in time is closed here.
    setTimeout(() => this.signal.close(1000), 500);
    this.close();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#send?.close();
    this.#recv?.close();
  }

  #transportOptions(t: Json) {
    return {
      ...(this.session.iceServers ? { iceServers: [...this.session.iceServers] } : {}),
      id: t.transportId as string,
      iceParameters: t.iceParameters as types.IceParameters,
      iceCandidates: t.iceCandidates as types.IceCandidate[],
      dtlsParameters: t.dtlsParameters as types.DtlsParameters,
      sctpParameters: t.sctpParameters as types.SctpParameters,
    };
  }

  /** One NTP-style round against the host's clock (sfu/README.md, "Glass-to-glass latency"). */
  async #timeRound(): Promise<void> {
    const t0 = performance.timeOrigin + performance.now();
    const { serverTimeMs } = await this.signal.request('time');
    const t1 = performance.timeOrigin + performance.now();
    this.#clockSync.push({ t0, serverTimeMs, t1 });
    if (this.#clockSync.length > 16) this.#clockSync.shift();
  }

  async #report(): Promise<void> {
    await this.#timeRound().catch(() => undefined);
    const stats = await this.#recv?.getStats().catch(() => undefined);
    let framesDecoded = 0;
    let jitterBufferMs = 0;
    let bytes = 0;
    let lost = 0;
    let received = 0;
    stats?.forEach((entry: Json) => {
      if (entry.type === 'inbound-rtp') {
        bytes += Number(entry.bytesReceived ?? 0);
        lost += Math.max(0, Number(entry.packetsLost ?? 0));
        received += Number(entry.packetsReceived ?? 0);
        // The video receiver that decodes: mediasoup-client's probation receiver (padding only,
        // nothing decoded) is video too, in no fixed order.
        if (entry.kind === 'video' && Number(entry.framesDecoded ?? 0) >= framesDecoded) {
          this.figures.fps = Number(entry.framesPerSecond ?? 0);
          framesDecoded = Number(entry.framesDecoded ?? 0);
          const emitted = Number(entry.jitterBufferEmittedCount ?? 0);
          jitterBufferMs = emitted ? (Number(entry.jitterBufferDelay ?? 0) / emitted) * 1000 : 0;
        }
      }
      if (entry.type === 'candidate-pair' && entry.nominated && entry.currentRoundTripTime !== undefined)
        this.figures.rttMs = Number(entry.currentRoundTripTime) * 1000;
    });
    const now = performance.now();
    if (this.#last && now > this.#last.at)
      this.figures.bitrateBps = ((bytes - this.#last.bytes) * 8 * 1000) / (now - this.#last.at);
    this.#last = { at: now, bytes };
    this.figures.loss = lost + received ? lost / (lost + received) : 0;
    const frames = this.#frames;
    const clockSync = this.#clockSync;
    this.#frames = [];
    this.#clockSync = [];
    const answer = await this.signal
      .request('report', {
        fps: this.figures.fps,
        framesDecoded,
        jitterBufferMs: Math.min(jitterBufferMs, 60_000),
        ...(this.firstFrameMs !== undefined ? { firstFrameMs: Math.min(this.firstFrameMs, 600_000) } : {}),
        frames,
        clockSync,
      })
      .catch(() => undefined);
    const latencies = ((answer?.glassToGlassMs as (number | null)[] | undefined) ?? []).filter(
      (v): v is number => typeof v === 'number',
    );
    if (latencies.length) {
      latencies.sort((a, b) => a - b);
      this.figures.glassToGlassMs = latencies[Math.floor(latencies.length / 2)];
    }
  }
}
