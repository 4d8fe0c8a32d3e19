// What a joined viewer may ask for, and what its rights allow: every request but `join`, answered
// on the viewer's own media. A VIEW session never gets a sending transport nor the phone's output.
import { CloseCode, SignalClose } from './close-codes.js';
import { hostTimeMs } from './latency.js';
import type { Session } from './session.js';
import type { ClientReport, QualityPreset, ReportResult, Request } from './signaling/protocol.js';
import type { ViewerMedia } from './viewer-media.js';

export interface JoinedViewer {
  readonly session: Session;
  readonly media: ViewerMedia;
  /** A message from the viewer's input channel. */
  onInput(text: string): void;
  /** A `report`: the session takes it; the answer gives the presented frames' latencies. */
  report(report: ClientReport): ReportResult;
  /** `setQuality`: the session asks for another picture. */
  setQuality(quality: QualityPreset): void;
  /** `leave`: end the session (the socket closes with 1000; there is no answer). */
  leave(): void;
}

const watchOnly = () =>
  new SignalClose(CloseCode.FORBIDDEN, 'this session may watch the phone, not control it');

export async function answerViewerRequest(
  request: Exclude<Request, { type: 'join' }>,
  viewer: JoinedViewer,
): Promise<unknown> {
  const { session, media } = viewer;
  const control = session.rights === 'control';
  switch (request.type) {
    case 'createTransport':
      if (request.direction === 'send' && !control) throw watchOnly();
      return media.createTransport(request.direction, session.id);
    case 'connectTransport':
      await media.connectTransport(request.transportId, request.dtlsParameters);
      return {};
    case 'consume':
      return media.consume(request.kind, request.rtpCapabilities);
    case 'resume':
      await media.resume(request.consumerId);
      return {};
    case 'consumeData':
      if (!control)
        throw new SignalClose(CloseCode.FORBIDDEN, 'the phone’s output is for a controlling session');
      return media.consumeOutput();
    case 'produceData':
      if (!control) throw watchOnly();
      return media.produceInput(request.transportId, request.sctpStreamParameters, viewer.onInput);
    case 'report':
      return viewer.report(request.report);
    case 'time':
      // Taken as late as possible: the answer leaves right after.
      return { serverTimeMs: hostTimeMs() };
    case 'stats':
      return session.stats(await media.videoFigures(), false);
    case 'setQuality':
      viewer.setQuality(request.quality);
      return {};
    case 'leave':
      viewer.leave();
      return undefined;
  }
}
