import { EventEmitter } from 'node:events';

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** Surface.ROTATION_*: quarter turns counterclockwise from the natural (portrait) orientation. */
export type Rotation = 0 | 1 | 2 | 3;

/**
 * The phone's built-in display: a natural size that never changes (what `wm size` prints), a
 * rotation that transposes the logical size apps and input see, and whether its content is moving.
 * scrcpy's server watches it: a rotation restarts capture at the new size.
 */
export class Display extends EventEmitter<{ rotation: [Rotation]; still: [boolean] }> {
  readonly natural: Size;
  readonly dpi: number;
  /** Frames per second the content changes at while not still. */
  readonly refreshRate: number;
  #rotation: Rotation = 0;
  #still = false;

  constructor(natural: Size, dpi: number, refreshRate: number) {
    super();
    this.natural = natural;
    this.dpi = dpi;
    this.refreshRate = refreshRate;
  }

  get rotation(): Rotation {
    return this.#rotation;
  }

  /** The size in the current orientation: what apps, touches and a screen capture see. */
  get logicalSize(): Size {
    const { width, height } = this.natural;
    return this.#rotation % 2 === 0 ? { width, height } : { width: height, height: width };
  }

  setRotation(rotation: Rotation): void {
    if (rotation === this.#rotation) return;
    this.#rotation = rotation;
    this.emit('rotation', rotation);
  }

  /**
   * A still screen produces no new frames, as SurfaceFlinger composes nothing when nothing
   * changes: an encoder then has nothing to send until it is asked for a key frame.
   */
  get still(): boolean {
    return this.#still;
  }

  setStill(still: boolean): void {
    if (still === this.#still) return;
    this.#still = still;
    this.emit('still', still);
  }
}
