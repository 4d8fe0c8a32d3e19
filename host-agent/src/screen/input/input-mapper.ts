import type { NavButton, ScrollInput, TouchInput, ViewerInput } from '@cphone/sfu';
import {
  AndroidKeyCode,
  AndroidKeyEventAction,
  type AndroidKeyEventMeta,
  AndroidMotionEventAction,
  type ScrcpyControlMessageWriter,
  ScrcpyPointerId,
} from '@yume-chan/scrcpy';
import { frameToVideo, type Size } from './frame-mapping.js';
import { textRuns } from './text-runs.js';

/** The part of @yume-chan/scrcpy's control writer the mapper drives (tests pass a recorder). */
export type ScrcpyControl = Pick<
  ScrcpyControlMessageWriter,
  | 'injectTouch'
  | 'injectScroll'
  | 'injectKeyCode'
  | 'injectText'
  | 'backOrScreenOn'
  | 'rotateDevice'
  | 'setClipboard'
>;

const NAV_KEYS: Record<Exclude<NavButton, 'back'>, AndroidKeyCode> = {
  home: AndroidKeyCode.AndroidHome,
  'app-switch': AndroidKeyCode.AndroidAppSwitch,
  power: AndroidKeyCode.Power,
  'volume-up': AndroidKeyCode.VolumeUp,
  'volume-down': AndroidKeyCode.VolumeDown,
};

/** scrcpy refuses an 11th pointer (PointersState.MAX_POINTERS). */
const MAX_POINTERS = 10;

/**
 * Turns checked viewer input into scrcpy control messages for the phone's current video. Browser
 * pointers are fingers with their own scrcpy pointer id (the browser's id: scrcpy keeps its own
 * small Android ids, and its reserved negative ids never collide with the browser's 0..2^31-1);
 * a move of a pointer that is not down is the mouse hovering (scrcpy's POINTER_ID_MOUSE with
 * ACTION_HOVER_MOVE). Text that key events can carry is typed; the rest is pasted through the
 * clipboard, each paste acknowledged before the next message, so the order holds.
 */
export class InputMapper {
  readonly #control: ScrcpyControl;
  readonly #videoSize: () => Size | undefined;
  /** Pointers down: last position in video coordinates, so a stale up can still release them. */
  readonly #down = new Map<number, { x: number; y: number; video: Size }>();
  #clipboardSequence = 0n;

  constructor(control: ScrcpyControl, videoSize: () => Size | undefined) {
    this.#control = control;
    this.#videoSize = videoSize;
  }

  async handle(input: ViewerInput): Promise<void> {
    switch (input.type) {
      case 'touch':
        return this.#touch(input);
      case 'scroll':
        return this.#scroll(input);
      case 'key':
        return this.#control.injectKeyCode({
          action: input.action === 'down' ? AndroidKeyEventAction.Down : AndroidKeyEventAction.Up,
          // Any Android key code and meta state pass through; the library's unions list only common ones.
          keyCode: input.keycode as AndroidKeyCode,
          metaState: input.metaState as AndroidKeyEventMeta,
          repeat: input.repeat,
        });
      case 'text':
        for (const run of textRuns(input.text)) {
          if (run.via === 'type') await this.#control.injectText(run.text);
          else await this.setClipboard(run.text, true);
        }
        return;
      case 'clipboard':
        return this.setClipboard(input.text, input.paste);
      case 'nav':
        return this.#nav(input.button);
      case 'rotate':
        return this.#control.rotateDevice();
      case 'get-clipboard':
        // Answered from what the phone pushed (see ScreenIngest): the server ignores GET_CLIPBOARD
        // while it pushes changes itself.
        return;
    }
  }

  /** Sets the phone's clipboard (pasting it if asked) and resolves once the phone acknowledged it. */
  setClipboard(text: string, paste: boolean): Promise<void> {
    this.#clipboardSequence++;
    return this.#control.setClipboard({ sequence: this.#clipboardSequence, paste, content: text });
  }

  /** The session ended: pointers down on it are gone with it. */
  reset(): void {
    this.#down.clear();
  }

  async #touch(input: TouchInput): Promise<void> {
    const video = this.#videoSize();
    if (!video) return;
    const frame = { width: input.frameWidth, height: input.frameHeight };
    const held = this.#down.get(input.pointerId);
    let point = frameToVideo(input.x, input.y, frame, video);
    if (input.action === 'up' || input.action === 'cancel') {
      if (!held) return;
      this.#down.delete(input.pointerId);
      // Released on a stale frame (a rotation happened meanwhile): release where it was, scaled to
      // the current video, so the phone is not left with a stuck finger.
      point ??= {
        x: Math.min(Math.round((held.x * video.width) / held.video.width), video.width - 1),
        y: Math.min(Math.round((held.y * video.height) / held.video.height), video.height - 1),
      };
      await this.#inject(
        input.action === 'up' ? AndroidMotionEventAction.Up : AndroidMotionEventAction.Cancel,
        BigInt(input.pointerId),
        point,
        video,
        0,
      );
      return;
    }
    if (!point) return;
    if (input.action === 'move' && !held) {
      await this.#inject(AndroidMotionEventAction.HoverMove, ScrcpyPointerId.Mouse, point, video, 0);
      return;
    }
    if (input.action === 'down' && !held && this.#down.size >= MAX_POINTERS) return;
    this.#down.set(input.pointerId, { ...point, video });
    await this.#inject(
      input.action === 'down' && !held ? AndroidMotionEventAction.Down : AndroidMotionEventAction.Move,
      BigInt(input.pointerId),
      point,
      video,
      // A touching pointer with no pressure reading (a mouse, most touch screens report 0.5 or 0)
      // still presses: Android treats pressure 0 as barely touching.
      input.pressure > 0 ? input.pressure : 1,
    );
  }

  #inject(
    action: AndroidMotionEventAction,
    pointerId: bigint,
    point: { x: number; y: number },
    video: Size,
    pressure: number,
  ): Promise<void> {
    return this.#control.injectTouch({
      action,
      pointerId,
      pointerX: point.x,
      pointerY: point.y,
      videoWidth: video.width,
      videoHeight: video.height,
      pressure,
      actionButton: 0,
      buttons: 0,
    });
  }

  async #scroll(input: ScrollInput): Promise<void> {
    const video = this.#videoSize();
    const point =
      video && frameToVideo(input.x, input.y, { width: input.frameWidth, height: input.frameHeight }, video);
    if (!video || !point) return;
    await this.#control.injectScroll({
      pointerX: point.x,
      pointerY: point.y,
      videoWidth: video.width,
      videoHeight: video.height,
      // Android's AXIS_VSCROLL is positive away from the user (up); the viewer's dy is positive down.
      scrollX: input.dx,
      scrollY: -input.dy,
      buttons: 0,
    });
  }

  async #nav(button: NavButton): Promise<void> {
    if (button === 'back') {
      // scrcpy's BACK_OR_SCREEN_ON: back, or wake the screen when it is off.
      await this.#control.backOrScreenOn(AndroidKeyEventAction.Down);
      await this.#control.backOrScreenOn(AndroidKeyEventAction.Up);
      return;
    }
    const keyCode = NAV_KEYS[button];
    for (const action of [AndroidKeyEventAction.Down, AndroidKeyEventAction.Up]) {
      await this.#control.injectKeyCode({ action, keyCode, metaState: 0, repeat: 0 });
    }
  }
}
