// @cphone/sfu: the phone's screen and sound to browsers over WebRTC, and the viewers' input back.
export {
  CLOSE_REASONS,
  CloseCode,
  closeFrameReason,
  DeviceUnavailableError,
  SignalClose,
} from './close-codes.js';
export { AUDIO_PAYLOAD_TYPE, H264_PROFILE_LEVEL_ID, MEDIA_CODECS, VIDEO_PAYLOAD_TYPE } from './codecs.js';
export type {
  Feed,
  FeedProvider,
  FeedViewer,
  FeedWiring,
  MediaSink,
  RtpSource,
  VideoSize,
  ViewerLink,
} from './feed.js';
export {
  type ClipboardInput,
  type GetClipboardInput,
  InputError,
  type KeyInput,
  MAX_INPUT_BYTES,
  type NavButton,
  type NavInput,
  type PhoneOutput,
  parseViewerInput,
  type RotateInput,
  type ScrollInput,
  type TextInput,
  type TouchInput,
  type ViewerInput,
} from './input.js';
export { type ClockSample, type FrameTiming, hostTimeMs, type PresentedFrame } from './latency.js';
export type { SfuMetrics } from './metrics.js';
export type { SfuOptions } from './options.js';
export type { SessionEvent, SessionEventType, SessionInfo, SessionStats } from './session.js';
export { createSfu, type SessionMatch, Sfu } from './sfu.js';
export {
  type ClientReport,
  MAX_CLOCK_SAMPLES,
  MAX_REPORT_SAMPLES,
  MAX_SIGNAL_BYTES,
  QUALITY_PRESETS,
  type QualityPreset,
  type ReportResult,
  type Request as SignalRequest,
  type RequestType as SignalRequestType,
} from './signaling/protocol.js';
