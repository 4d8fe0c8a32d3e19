import type { ViewerInput } from '@cphone/sfu';
import type { Adb } from '@yume-chan/adb';
import { type Logger, pino } from 'pino';
import { delay } from '../adb/abort.js';
import { Backoff, type BackoffOptions } from '../session/backoff.js';
import { InputMapper } from './input/input-mapper.js';
import type { FrameInfo, MediaSink, RtpSourceConfig } from './media-sink.js';
import { AudioRtp } from './rtp/audio-rtp.js';
import { VideoRtp, type VideoSize } from './rtp/video-rtp.js';
import {
  loadScrcpyServer,
  type ScrcpyServerBinary,
  ScrcpyServerIntegrityError,
} from './scrcpy-server-binary.js';
import { type CaptureSettings, type ScrcpySession, startScrcpySession } from './scrcpy-session.js';

/** Where the phone is: a fresh ADB connection of the ingest's own per session (DeviceAdb has one). */
export interface ScreenDevice {
  connectDedicated(signal?: AbortSignal): Promise<Adb>;
}

export interface ScreenIngestOptions {
  device: ScreenDevice;
  /** The scrcpy server on this host (sha256-checked before every push). */
  server: ScrcpyServerBinary;
  sink: MediaSink;
  video: RtpSourceConfig;
  audio: RtpSourceConfig;
  /** Default: 1280 max size, 30 fps, 2 Mbps, Baseline, Opus at 64 kbps. */
  capture?: Partial<CaptureSettings>;
  /** Largest RTP payload, bytes. Default 1200 (fits a 1280-byte path MTU with SRTP and extensions). */
  maxPayload?: number;
  /** Between restarts. Default 250 ms doubling to 10 s, full jitter; reset after 10 s of streaming. */
  backoff?: BackoffOptions;
  /** Each video frame as it is sent, with its capture time. */
  onFrame?(info: FrameInfo): void;
  /** The phone's clipboard changed (or a viewer asked for it and it is known). */
  onClipboard?(text: string): void;
  /** The video size changed (first frame, rotation, a new max size). */
  onVideoSize?(size: VideoSize): void;
  /**
   * A session failed to start (wrong server file, phone unreachable or still booting) or ended on
   * its own (server died, phone rebooted); the ingest tries again after its backoff.
   */
  onSessionError?(error: Error): void;
  logger?: Logger;
}

export const DEFAULT_CAPTURE: CaptureSettings = {
  maxSize: 1280,
  maxFps: 30,
  videoBitRate: 2_000_000,
  profile: 'baseline',
  audio: true,
  audioBitRate: 64_000,
};

/** A phone whose sys.boot_completed is not 1 yet: its system services cannot capture. */
class NotBootedError extends Error {
  override readonly name = 'NotBootedError';
}

/** A session that was streaming ended by itself (server exit, stream or connection closed). */
class SessionEndedError extends Error {
  override readonly name = 'SessionEndedError';
}

/** Values scrcpy would refuse or misread fail here, with the value. */
function checkCapture(capture: CaptureSettings): CaptureSettings {
  const { maxSize, maxFps, videoBitRate, audioBitRate } = capture;
  if (!Number.isInteger(maxSize) || maxSize < 0) throw new RangeError(`maxSize ${maxSize} is not a size`);
  if (!(maxFps >= 0)) throw new RangeError(`maxFps ${maxFps} is not a rate`);
  if (!Number.isInteger(videoBitRate) || videoBitRate <= 0) {
    throw new RangeError(`videoBitRate ${videoBitRate} is not a positive integer`);
  }
  if (!Number.isInteger(audioBitRate) || audioBitRate <= 0) {
    throw new RangeError(`audioBitRate ${audioBitRate} is not a positive integer`);
  }
  return capture;
}

/** After this long streaming, a session counts as healthy and the backoff starts over. */
const STABLE_MS = 10_000;
/** A key frame asked for this recently and not seen yet is not asked for again (PLI storms). */
const KEYFRAME_COALESCE_MS = 300;
/** A message the phone does not take (or acknowledge) by then fails, so later input is not held up. */
const INPUT_TIMEOUT_MS = 5000;

/**
 * One phone's screen and sound as RTP, for as long as it is watched: runs scrcpy's server over
 * ADB, packetizes what it sends into the sink, and when the phone reboots, rotates or the server
 * dies, starts it again with backoff, on the same SSRCs with continuing sequence numbers and
 * timestamps, so viewers keep their stream. Viewer input goes to the running server.
 */
export class ScreenIngest {
  readonly #options: ScreenIngestOptions;
  readonly #log: Logger;
  #capture: CaptureSettings;
  /** Counts changes of #capture: a session streams the version it started with. */
  #captureVersion = 0;
  /** The version of the session that sent its first frame, while it streams. */
  #streamingVersion: number | undefined;
  /** Ends the running session so the next starts with the new capture settings. */
  #captureChanged: () => void = () => {};
  /** reconfigure() callers waiting for a session with their settings to send a frame. */
  #applied: { version: number; resolve: () => void }[] = [];
  readonly #video: VideoRtp;
  readonly #audio: AudioRtp;
  readonly #stop = new AbortController();
  readonly #backoff: Backoff;
  readonly #running: Promise<void>;
  readonly #stopped: Promise<'closed'>;
  #session: ScrcpySession | undefined;
  #mapper: InputMapper | undefined;
  /** Input is applied in order, one message at a time (a paste waits for its acknowledgement). */
  #inputs: Promise<void> = Promise.resolve();
  #clipboard: string | undefined;
  #keyframeAskedAt: number | undefined;
  #sessions = 0;

  constructor(options: ScreenIngestOptions) {
    this.#options = options;
    this.#log = (options.logger ?? pino({ level: 'silent' })).child({ module: 'screen' });
    this.#capture = checkCapture({ ...DEFAULT_CAPTURE, ...options.capture });
    const maxPayload = options.maxPayload ?? 1200;
    this.#video = new VideoRtp(options.video, maxPayload, (p) => options.sink.sendVideoRtp(p));
    this.#audio = new AudioRtp(options.audio, (p) => options.sink.sendAudioRtp(p));
    this.#backoff = new Backoff({ baseMs: 250, capMs: 10_000, ...options.backoff });
    this.#stopped = new Promise((resolve) =>
      this.#stop.signal.addEventListener('abort', () => resolve('closed'), { once: true }),
    );
    this.#running = this.#run();
  }

  /** The size of the video being sent, once the phone described it. */
  get videoSize(): VideoSize | undefined {
    return this.#video.size;
  }

  /** Whether a scrcpy server is streaming right now. */
  get streaming(): boolean {
    return this.#session !== undefined;
  }

  /** Sessions started so far (1 + restarts, reconfigures included). */
  get sessions(): number {
    return this.#sessions;
  }

  /** What the phone is asked for now (by the next session, if a reconfigure is under way). */
  get capture(): CaptureSettings {
    return this.#capture;
  }

  /**
   * Changes what the phone encodes: bit rate, max size, max fps (or any capture setting). scrcpy
   * 3.3 takes these only at start, so the running server is stopped and a new one started at once
   * on the same ADB connection, with no backoff. The RTP streams go on: same SSRCs, sequence
   * numbers continuing, timestamps resuming where the wall clock says (as after any restart), and
   * the new encoder's first frame is an IDR with its SPS/PPS, which viewers decode without a
   * renegotiation. Resolves once a session with these settings sent its first video frame (or the
   * ingest closed); at once when nothing changes. A failed start retries with backoff, as any.
   */
  reconfigure(changes: Partial<CaptureSettings>): Promise<void> {
    const next = checkCapture({ ...this.#capture, ...changes });
    const keys = Object.keys(next) as (keyof CaptureSettings)[];
    if (keys.some((key) => next[key] !== this.#capture[key])) {
      this.#capture = next;
      this.#captureVersion++;
      this.#log.info({ capture: next }, 'capture settings changed; restarting scrcpy');
      this.#captureChanged();
    }
    const version = this.#captureVersion;
    if (this.#stop.signal.aborted || this.#streamingVersion === version) return Promise.resolve();
    return new Promise((resolve) => this.#applied.push({ version, resolve }));
  }

  /**
   * A new viewer, a PLI or a FIR: the phone restarts its encoder (RESET_VIDEO), which sends its
   * parameter sets and an IDR at its next frame, even when the screen is static.
   */
  requestKeyframe(): void {
    const session = this.#session;
    if (!session) return; // the next session starts with a key frame anyway
    const now = performance.now();
    if (this.#keyframeAskedAt !== undefined && now - this.#keyframeAskedAt < KEYFRAME_COALESCE_MS) return;
    this.#keyframeAskedAt = now;
    session.controller.resetVideo().catch((error: unknown) => {
      this.#log.debug({ err: error }, 'reset video not sent');
    });
  }

  /**
   * Applies one checked viewer message. Resolves once it was written (a clipboard set or a paste:
   * once the phone acknowledged it); input while no server runs is dropped.
   */
  input(message: ViewerInput): Promise<void> {
    const next = this.#inputs.then(() => this.#apply(message));
    this.#inputs = next.catch(() => {});
    return next;
  }

  /** Stops streaming; the phone's server is killed and the ADB connection closed. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#running;
    this.#settle(Number.POSITIVE_INFINITY);
  }

  async #apply(message: ViewerInput): Promise<void> {
    if (message.type === 'get-clipboard') {
      if (this.#clipboard !== undefined) this.#options.onClipboard?.(this.#clipboard);
      return;
    }
    const mapper = this.#mapper;
    if (!mapper) {
      this.#log.debug({ type: message.type }, 'input dropped: no scrcpy session');
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`phone did not take ${message.type} input within ${INPUT_TIMEOUT_MS} ms`)),
        INPUT_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([mapper.handle(message), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (message.type === 'clipboard') this.#clipboard = message.text;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let adb: Adb | undefined;
      let startedAt: number | undefined;
      let integrityError = false;
      let notBooted = false;
      try {
        const server = await loadScrcpyServer(this.#options.server);
        adb = await this.#options.device.connectDedicated(signal);
        await this.#waitBooted(adb);
        // A capture change starts the next session on the same connection at once: no connect,
        // boot check or backoff between the two servers.
        for (;;) {
          const ended = await this.#stream(adb, server, () => {
            startedAt ??= performance.now();
          });
          if (ended === 'closed') break;
        }
      } catch (error) {
        integrityError = error instanceof ScrcpyServerIntegrityError;
        notBooted = error instanceof NotBootedError;
        if (!signal.aborted) {
          const err = error instanceof Error ? error : new Error(String(error));
          if (error instanceof SessionEndedError) {
            this.#log.warn({ reason: err.message }, 'scrcpy session ended; restarting');
          } else {
            const level = notBooted ? 'debug' : integrityError ? 'error' : 'warn';
            this.#log[level]({ err }, 'scrcpy session failed to start');
          }
          this.#options.onSessionError?.(err);
        }
      } finally {
        await adb?.close().catch(() => {});
      }
      if (signal.aborted) break;
      if (startedAt !== undefined && performance.now() - startedAt > STABLE_MS) this.#backoff.reset();
      // A wrong server file does not fix itself soon: wait at the cap for the operator. A booting
      // phone is polled at most every 2 s, so streaming resumes soon after boot completes.
      const next = integrityError ? this.#backoff.atCap() : this.#backoff.next();
      const wait = notBooted ? Math.min(next, 2000) : next;
      await delay(wait, signal).catch(() => {});
    }
  }

  /**
   * One scrcpy server with the capture settings of now, until it ends: 'reconfigure' when the
   * settings changed, 'closed' when the ingest closes; throws SessionEndedError when it ended on
   * its own, and whatever the start threw.
   */
  async #stream(adb: Adb, server: Uint8Array, onStart: () => void): Promise<'reconfigure' | 'closed'> {
    const capture = this.#capture;
    const version = this.#captureVersion;
    const changed = new Promise<'reconfigure'>((resolve) => {
      this.#captureChanged = () => resolve('reconfigure');
    });
    // Packets the old server had in flight when it was stopped must not reach the new timeline.
    let live = true;
    let first = true;
    this.#video.restart();
    this.#audio.restart();
    this.#keyframeAskedAt = undefined;
    const session = await startScrcpySession(adb, server, capture, {
      videoConfig: (data) => {
        if (live) this.#onConfig(data);
      },
      videoFrame: (frame, arrivedMs) => {
        if (!live) return;
        const info = this.#video.frame(frame, arrivedMs);
        if (info.keyframe) this.#keyframeAskedAt = undefined;
        this.#options.onFrame?.(info);
        if (first) {
          first = false;
          this.#streamingVersion = version;
          this.#settle(version);
        }
      },
      audioPacket: (packet, arrivedMs) => {
        if (live) this.#audio.packet(packet, arrivedMs);
      },
      clipboard: (text) => {
        this.#clipboard = text;
        this.#options.onClipboard?.(text);
      },
      serverOutput: (line) => this.#log.debug({ line }, 'scrcpy server'),
    });
    try {
      this.#sessions++;
      onStart();
      this.#session = session;
      this.#mapper = new InputMapper(session.controller, () => this.#video.size);
      this.#log.info({ session: this.#sessions, capture }, 'scrcpy streaming');
      const ended = await Promise.race([session.ended, this.#stopped, changed]);
      if (ended instanceof Error) throw new SessionEndedError(ended.message, { cause: ended });
      return ended;
    } finally {
      live = false;
      this.#streamingVersion = undefined;
      this.#session = undefined;
      this.#mapper = undefined;
      await session.close();
    }
  }

  /** Resolves the reconfigure() calls a session with `version` satisfies. */
  #settle(version: number): void {
    const waiting = this.#applied;
    this.#applied = waiting.filter((w) => w.version > version);
    for (const w of waiting) if (w.version <= version) w.resolve();
  }

  #onConfig(data: Uint8Array): void {
    const before = this.#video.size;
    const size = this.#video.config(data);
    if (before?.width !== size.width || before?.height !== size.height) {
      this.#log.info(size, 'video size');
      this.#options.onVideoSize?.(size);
    }
  }

  async #waitBooted(adb: Adb): Promise<void> {
    const booted = (await adb.subprocess.noneProtocol.spawnWaitText('getprop sys.boot_completed')).trim();
    if (booted !== '1') throw new NotBootedError('sys.boot_completed is not 1');
  }
}

/** Starts ingest for one phone; see ScreenIngest. */
export function startScreenIngest(options: ScreenIngestOptions): ScreenIngest {
  return new ScreenIngest(options);
}
