// One viewer socket's WebRTC side: a receiving WebRtcTransport (video, audio and, for CONTROL, the
// phone's output channel) and, for CONTROL, a sending one whose DataProducer 'input' carries the
// viewer's input; mediasoup-client needs a transport per direction (one RTCPeerConnection each).
// Both listen on the room's worker's WebRtcServer. The input DataProducer is consumed on the room's
// DirectTransport, which is how its messages reach Node. Closing this closes all of it.
import type { types } from 'mediasoup';
import { CloseCode, SignalClose } from './close-codes.js';
import type { ViewerLink } from './feed.js';
import type { Room } from './room.js';
import { badMessage } from './signaling/protocol.js';

const SCTP_STREAMS = { OS: 16, MIS: 16 };
/** Above the input contract's limit, so an oversize message reaches parseViewerInput and is refused there. */
const MAX_SCTP_MESSAGE_BYTES = 256 * 1024;

export interface TransportInfo {
  readonly transportId: string;
  readonly iceParameters: types.IceParameters;
  readonly iceCandidates: types.IceCandidate[];
  readonly dtlsParameters: types.DtlsParameters;
  readonly sctpParameters: types.SctpParameters | undefined;
}

export interface ConsumerInfo {
  readonly consumerId: string;
  readonly producerId: string;
  readonly kind: types.MediaKind;
  readonly rtpParameters: types.RtpParameters;
}

export interface DataConsumerInfo {
  readonly dataConsumerId: string;
  readonly dataProducerId: string;
  readonly sctpStreamParameters: types.SctpStreamParameters | undefined;
  readonly label: string;
  readonly protocol: string;
}

/** What mediasoup says of the video sent to this viewer. */
export interface SendFigures {
  readonly bitrateBps: number;
  readonly packetLoss: number;
  readonly rttMs: number;
}

/** mediasoup validates what the viewer sent and throws TypeError; the detail is the caller's to log. */
async function checked<T>(field: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof TypeError) throw Object.assign(badMessage(`invalid ${field}`), { cause: error });
    throw error;
  }
}

export class ViewerMedia {
  readonly #room: Room;
  readonly #transports = new Map<string, { transport: types.WebRtcTransport; connected: boolean }>();
  #recv: types.WebRtcTransport | undefined;
  #send: types.WebRtcTransport | undefined;
  readonly #consumers = new Map<string, types.Consumer>();
  #output: types.DataConsumer | undefined;
  #input: { producer: types.DataProducer; consumer: types.DataConsumer } | undefined;
  #closed = false;

  constructor(room: Room) {
    this.#room = room;
  }

  async createTransport(direction: 'recv' | 'send', sessionId: string): Promise<TransportInfo> {
    if ((direction === 'recv' ? this.#recv : this.#send) !== undefined)
      throw badMessage(`a ${direction} transport exists already`);
    const transport = await this.#room.router.createWebRtcTransport({
      webRtcServer: this.#room.server,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      enableSctp: true,
      numSctpStreams: SCTP_STREAMS,
      maxSctpMessageSize: MAX_SCTP_MESSAGE_BYTES,
      // mediasoup's estimate starts at 600 kbit/s and probes up over seconds; a phone already
      // sending more than that would read to its viewers' feed as a narrow link at every join. From
      // the ceiling, a narrow link shows within a second or two, as the delay it adds.
      initialAvailableOutgoingBitrate: this.#room.videoMaxBitrate,
      appData: { sessionId, direction },
    });
    if (this.#closed) {
      transport.close();
      throw new SignalClose(CloseCode.INTERNAL, 'the viewer left');
    }
    if (direction === 'recv') this.#recv = transport;
    else this.#send = transport;
    this.#transports.set(transport.id, { transport, connected: false });
    return {
      transportId: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
      sctpParameters: transport.sctpParameters,
    };
  }

  async connectTransport(transportId: string, dtlsParameters: unknown): Promise<void> {
    const entry = this.#transports.get(transportId);
    if (!entry) throw badMessage('no such transport');
    if (entry.connected) throw badMessage('the transport is connected already');
    entry.connected = true;
    await checked('dtlsParameters', () =>
      entry.transport.connect({ dtlsParameters: dtlsParameters as types.DtlsParameters }),
    );
  }

  /** A paused consumer of the room's video or audio; `resume` starts it. */
  async consume(kind: types.MediaKind, rtpCapabilities: unknown): Promise<ConsumerInfo> {
    const transport = this.#need(this.#recv, 'recv');
    const producer = kind === 'video' ? this.#room.video : this.#room.audio;
    if ([...this.#consumers.values()].some((c) => c.kind === kind))
      throw badMessage(`a ${kind} consumer exists already`);
    const caps = rtpCapabilities as types.RtpCapabilities;
    const can = await checked('rtpCapabilities', async () =>
      this.#room.router.canConsume({ producerId: producer.id, rtpCapabilities: caps }),
    );
    if (!can)
      throw new SignalClose(
        CloseCode.UNSUPPORTED,
        kind === 'video' ? 'this browser cannot decode H.264' : 'this browser cannot play Opus',
      );
    const consumer = await checked('rtpCapabilities', () =>
      transport.consume({ producerId: producer.id, rtpCapabilities: caps, paused: true }),
    );
    this.#consumers.set(consumer.id, consumer);
    return {
      consumerId: consumer.id,
      producerId: producer.id,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
    };
  }

  async resume(consumerId: string): Promise<void> {
    const consumer = this.#consumers.get(consumerId);
    if (!consumer) throw badMessage('no such consumer');
    await consumer.resume();
    // A new viewer needs a picture at once, not at the encoder's next key frame.
    if (consumer.kind === 'video') this.#room.requestKeyframe();
  }

  /** The phone's output channel (clipboard), for CONTROL viewers. */
  async consumeOutput(): Promise<DataConsumerInfo> {
    const transport = this.#need(this.#recv, 'recv');
    if (this.#output) throw badMessage('the output channel is consumed already');
    this.#output = await transport.consumeData({ dataProducerId: this.#room.output.id });
    return {
      dataConsumerId: this.#output.id,
      dataProducerId: this.#room.output.id,
      sctpStreamParameters: this.#output.sctpStreamParameters,
      label: this.#output.label,
      protocol: this.#output.protocol,
    };
  }

  /** The viewer's input channel; each message goes to `onMessage` as text. */
  async produceInput(
    transportId: string,
    sctpStreamParameters: unknown,
    onMessage: (text: string) => void,
  ): Promise<{ dataProducerId: string }> {
    const transport = this.#need(this.#send, 'send');
    if (transport.id !== transportId) throw badMessage('input goes on the send transport');
    if (this.#input) throw badMessage('the input channel exists already');
    const producer = await checked('sctpStreamParameters', () =>
      transport.produceData({
        sctpStreamParameters: sctpStreamParameters as types.SctpStreamParameters,
        label: 'input',
      }),
    );
    const consumer = await this.#room.direct.consumeData({ dataProducerId: producer.id });
    this.#input = { producer, consumer };
    consumer.on('message', (message) => onMessage(message.toString('utf8')));
    if (this.#closed) this.close();
    return { dataProducerId: producer.id };
  }

  /** The video consumer's figures, or undefined before it exists. */
  async videoFigures(): Promise<SendFigures | undefined> {
    const consumer = [...this.#consumers.values()].find((c) => c.kind === 'video');
    if (!consumer || consumer.closed) return undefined;
    const stats = await consumer.getStats();
    const sent = stats.find((s) => s.type === 'outbound-rtp') as types.ConsumerStat | undefined;
    if (!sent) return undefined;
    return {
      bitrateBps: sent.bitrate,
      // RTCP receiver reports carry the fraction lost in 1/256ths.
      packetLoss: sent.fractionLost / 256,
      rttMs: sent.roundTripTime ?? 0,
    };
  }

  /**
   * The link as mediasoup sees it, or undefined until the video consumer runs and the transport
   * has a bandwidth estimate (the viewer's transport-cc feedback or REMB).
   */
  async link(): Promise<ViewerLink | undefined> {
    const transport = this.#recv;
    const consumer = [...this.#consumers.values()].find((c) => c.kind === 'video');
    if (!transport || !consumer || consumer.closed || consumer.paused) return undefined;
    const [transportStats, consumerStats] = await Promise.all([transport.getStats(), consumer.getStats()]);
    const available = transportStats[0]?.availableOutgoingBitrate;
    const sent = consumerStats.find((s) => s.type === 'outbound-rtp') as types.ConsumerStat | undefined;
    if (available === undefined || !sent) return undefined;
    return {
      availableBitrate: available,
      lossFraction: sent.fractionLost / 256,
      sendBitrate: transportStats[0]!.sendBitrate,
      score: sent.score,
    };
  }

  /**
   * Caps what mediasoup lets itself send on the receiving transport (0 lifts the cap): its
   * bandwidth estimate stays under it, as under a narrow link. The H.264 passes through
   * unpaced, so the media itself is not held back. False before the transport exists.
   */
  async limitOutgoing(bitrate: number): Promise<boolean> {
    if (!this.#recv || this.#recv.closed) return false;
    await this.#recv.setMaxOutgoingBitrate(bitrate);
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#input?.consumer.close();
    for (const { transport } of this.#transports.values()) transport.close();
    this.#transports.clear();
    this.#consumers.clear();
  }

  #need(transport: types.WebRtcTransport | undefined, direction: string): types.WebRtcTransport {
    if (!transport) throw badMessage(`create the ${direction} transport first`);
    return transport;
  }
}
