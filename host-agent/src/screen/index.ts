// The phone's screen and sound to RTP, and viewer input back: scrcpy's server run over ADB.

export { frameToVideo } from './input/frame-mapping.js';
export { InputMapper, type ScrcpyControl } from './input/input-mapper.js';
export { isKeyTypable, type TextRun, textRuns } from './input/text-runs.js';
export type { FrameInfo, MediaSink, RtpSourceConfig } from './media-sink.js';
export type { VideoSize } from './rtp/video-rtp.js';
export {
  loadScrcpyServer,
  SCRCPY_SERVER_DEVICE_PATH,
  SCRCPY_SERVER_SHA256,
  SCRCPY_SERVER_VERSION,
  type ScrcpyServerBinary,
  ScrcpyServerIntegrityError,
} from './scrcpy-server-binary.js';
export type { CaptureSettings, H264Profile } from './scrcpy-session.js';
export {
  DEFAULT_CAPTURE,
  type ScreenDevice,
  ScreenIngest,
  type ScreenIngestOptions,
  startScreenIngest,
} from './screen-ingest.js';
