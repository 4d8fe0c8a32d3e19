/** The scrcpy server release the virtual phone emulates (BuildConfig.VERSION_NAME). */
export const SCRCPY_SERVER_VERSION = '3.3.3';

/** What `app_process / com.genymobile.scrcpy.Server <version> key=value…` asked for. */
export interface ScrcpyServerOptions {
  version: string;
  /** 31-bit instance id; -1 (absent) means the socket is plain `scrcpy`. */
  scid: number;
  tunnelForward: boolean;
  video: boolean;
  audio: boolean;
  control: boolean;
  videoCodec: string;
  audioCodec: string;
  /** Longest side of the video, a multiple of 8; 0 keeps the display's size. */
  maxSize: number;
  /** 0: as fast as the screen changes. */
  maxFps: number;
  videoBitRate: number;
  /** Push the phone's clipboard changes to the client (and then GET_CLIPBOARD answers nothing). */
  clipboardAutosync: boolean;
  sendDeviceMeta: boolean;
  sendFrameMeta: boolean;
  sendDummyByte: boolean;
  sendCodecMeta: boolean;
  /** list_encoders, list_displays …: print and exit instead of serving. */
  listing: string | undefined;
  raw: Record<string, string>;
}

const bool = (value: string | undefined, fallback: boolean): boolean =>
  value === undefined ? fallback : value === 'true';

export function parseServerOptions(args: readonly string[]): ScrcpyServerOptions {
  const [version = '', ...rest] = args;
  const raw: Record<string, string> = {};
  for (const arg of rest) {
    const eq = arg.indexOf('=');
    if (eq > 0) raw[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  const rawStream = bool(raw['raw_stream'], false);
  const listing = Object.keys(raw).find((key) => key.startsWith('list_') && raw[key] === 'true');
  return {
    version,
    scid: raw['scid'] === undefined ? -1 : Number.parseInt(raw['scid'], 16),
    tunnelForward: bool(raw['tunnel_forward'], false),
    video: bool(raw['video'], true),
    audio: bool(raw['audio'], true),
    control: bool(raw['control'], true),
    videoCodec: raw['video_codec'] ?? 'h264',
    audioCodec: raw['audio_codec'] ?? 'opus',
    // Options.parse rounds it down to a multiple of 8.
    maxSize: (Number.parseInt(raw['max_size'] ?? '0', 10) || 0) & ~7,
    maxFps: Number.parseFloat(raw['max_fps'] ?? '0') || 0,
    videoBitRate: Number.parseInt(raw['video_bit_rate'] ?? '8000000', 10) || 8_000_000,
    clipboardAutosync: bool(raw['clipboard_autosync'], true),
    sendDeviceMeta: !rawStream && bool(raw['send_device_meta'], true),
    sendFrameMeta: !rawStream && bool(raw['send_frame_meta'], true),
    sendDummyByte: !rawStream && bool(raw['send_dummy_byte'], true),
    sendCodecMeta: !rawStream && bool(raw['send_codec_meta'], true),
    listing,
    raw,
  };
}

/** `scrcpy_%08x` of the scid, as the server's DesktopConnection names its socket. */
export function socketName(scid: number): string {
  return scid === -1 ? 'scrcpy' : `scrcpy_${scid.toString(16).padStart(8, '0')}`;
}
