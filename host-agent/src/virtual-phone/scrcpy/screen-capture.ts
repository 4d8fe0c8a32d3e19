import { EventEmitter } from 'node:events';
import type { Display, Size } from '../android/display.js';
import {
  chooseFixtureSize,
  DEFAULT_VIDEO_FIXTURES_DIR,
  type H264Stream,
  loadVideoFixture,
} from './h264-fixture.js';

/** scrcpy's Size.limit(maxSize): the longer side at most maxSize, the aspect ratio kept. */
export function limitSize(size: Size, maxSize: number): Size {
  const portrait = size.height > size.width;
  const major = portrait ? size.height : size.width;
  if (maxSize === 0 || major <= maxSize) return size;
  const minor = Math.trunc((maxSize * (portrait ? size.width : size.height)) / major);
  return portrait ? { width: minor, height: maxSize } : { width: maxSize, height: minor };
}

/** scrcpy's Size.round8(): encoders want multiples of 8. */
export function round8(size: Size): Size {
  const portrait = size.height > size.width;
  let major = portrait ? size.height : size.width;
  let minor = portrait ? size.width : size.height;
  if (major % 8 === 0 && minor % 8 === 0) return size;
  major &= ~7;
  minor = Math.min((minor + 4) & ~7, major);
  return portrait ? { width: minor, height: major } : { width: major, height: minor };
}

/** One configuration of the capture: what the encoder streams and how touches map back. */
export interface CaptureSession {
  stream: H264Stream;
  /** The video size the client sees, and must send with positional events. */
  videoSize: Size;
  /** The display's logical size when the capture started: where touches land. */
  deviceSize: Size;
}

/**
 * scrcpy's ScreenCapture over the virtual display: picks the video size from the display and
 * max_size, and invalidates itself when the display rotates or a client asks for a reset, which
 * makes the encoder restart (new config packet, then an IDR).
 */
export class ScreenCapture extends EventEmitter<{ invalidate: [] }> {
  readonly #display: Display;
  readonly #maxSize: number;
  readonly #fixturesDir: string;
  readonly #onRotation = (): void => this.invalidate();
  #current: CaptureSession | undefined;

  constructor(display: Display, maxSize: number, fixturesDir: string = DEFAULT_VIDEO_FIXTURES_DIR) {
    super();
    this.#display = display;
    this.#maxSize = maxSize;
    this.#fixturesDir = fixturesDir;
    display.on('rotation', this.#onRotation);
  }

  /** The capture the controller maps positions with; undefined before video started. */
  get current(): CaptureSession | undefined {
    return this.#current;
  }

  /** Configures the next encoder run for the display as it is now. */
  prepare(): CaptureSession {
    const deviceSize = this.#display.logicalSize;
    const wanted = round8(limitSize(deviceSize, this.#maxSize));
    const videoSize = chooseFixtureSize(wanted, this.#fixturesDir);
    this.#current = { stream: loadVideoFixture(videoSize, this.#fixturesDir), videoSize, deviceSize };
    return this.#current;
  }

  invalidate(): void {
    this.emit('invalidate');
  }

  /**
   * PositionMapper.map: a point in video coordinates to the display, or undefined when the client
   * sent it for another video size (it had not seen the rotation yet), which the server ignores.
   */
  map(x: number, y: number, videoWidth: number, videoHeight: number): { x: number; y: number } | undefined {
    const session = this.#current;
    if (!session) return { x, y };
    const { videoSize, deviceSize } = session;
    if (videoWidth !== videoSize.width || videoHeight !== videoSize.height) return undefined;
    return {
      x: Math.round((x * deviceSize.width) / videoSize.width),
      y: Math.round((y * deviceSize.height) / videoSize.height),
    };
  }

  release(): void {
    this.#display.off('rotation', this.#onRotation);
    this.removeAllListeners();
  }
}
