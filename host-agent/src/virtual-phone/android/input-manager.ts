import type { MotionAction, PhoneEvents } from '../events.js';
import type { Display } from './display.js';
import type { FocusedField } from './focused-field.js';
import { isTypable, KEYCODE } from './keyboard.js';

const MOTION_ACTIONS: Record<number, MotionAction> = {
  0: 'down',
  1: 'up',
  2: 'move',
  3: 'cancel',
  7: 'hover-move',
  9: 'hover-enter',
  10: 'hover-exit',
  11: 'button-press',
  12: 'button-release',
};
const ACTION_DOWN = 0;
const ACTION_UP = 1;
const ACTION_HOVER_MOVE = 7;
const MAX_POINTERS = 10;
const POINTER_ID_MOUSE = -1n;
const BUTTON_PRIMARY = 1;

/**
 * InputManager.injectInputEvent as scrcpy's Controller drives it: key events reach the focused
 * field, text only as far as key events can carry it, and touches keep scrcpy's PointersState
 * (a second pointer going down is ACTION_POINTER_DOWN, at most 10 pointers). Everything that
 * reaches the phone is recorded in its events.
 */
export class InputManager {
  readonly #events: PhoneEvents;
  readonly #display: Display;
  readonly #field: FocusedField;
  /** Pointers currently down, by scrcpy pointer id. */
  readonly #pointers = new Set<bigint>();

  constructor(events: PhoneEvents, display: Display, field: FocusedField) {
    this.#events = events;
    this.#display = display;
    this.#field = field;
  }

  injectKey(action: number, keyCode: number, metaState: number, repeat: number): void {
    this.#events.recordInput({
      kind: 'key',
      action: action === 0 ? 'down' : 'up',
      keyCode,
      metaState,
      repeat,
    });
    if (action === 0) this.#field.key(keyCode, metaState);
  }

  /** A key pressed and released (what Controller.pressReleaseKeycode injects). */
  pressKey(keyCode: number): void {
    this.injectKey(0, keyCode, 0, 0);
    this.injectKey(1, keyCode, 0, 0);
  }

  /**
   * Controller.injectText: each UTF-16 unit the virtual keyboard maps becomes key events; the
   * others are skipped. Returns the units that could not be typed.
   */
  injectText(text: string): string[] {
    const refused: string[] = [];
    let typed = '';
    for (const unit of text.split('')) {
      if (isTypable(unit)) typed += unit;
      else refused.push(unit);
    }
    this.#field.type(typed);
    return refused;
  }

  /** False when scrcpy would refuse it (an 11th pointer). */
  injectTouch(
    action: number,
    pointerId: bigint,
    point: { x: number; y: number },
    pressure: number,
    actionButton: number,
    buttons: number,
  ): boolean {
    const known = this.#pointers.has(pointerId);
    if (!known && this.#pointers.size >= MAX_POINTERS) return false;
    const mouse =
      pointerId === POINTER_ID_MOUSE &&
      (action === ACTION_HOVER_MOVE || ((actionButton | buttons) & ~BUTTON_PRIMARY) !== 0);
    // A finger is up when its action is UP; a mouse when no button is held.
    const up = mouse ? buttons === 0 : action === ACTION_UP;
    if (!up) this.#pointers.add(pointerId);
    const pointerCount = up ? this.#pointers.size + (known ? 0 : 1) : this.#pointers.size;
    let name = MOTION_ACTIONS[action] ?? 'other';
    if (pointerCount > 1 && action === ACTION_DOWN) name = 'pointer-down';
    if (pointerCount > 1 && action === ACTION_UP) name = 'pointer-up';
    if (up) this.#pointers.delete(pointerId);
    this.#events.recordInput({
      kind: 'motion',
      action: name,
      pointerId,
      x: point.x,
      y: point.y,
      pressure,
      pointerCount,
      tool: mouse ? 'mouse' : 'finger',
      rotation: this.#display.rotation,
    });
    return true;
  }

  injectScroll(point: { x: number; y: number }, hScroll: number, vScroll: number, buttons: number): void {
    this.#events.recordInput({ kind: 'scroll', ...point, hScroll, vScroll, buttons });
  }

  back(action: number): void {
    this.injectKey(action, KEYCODE.BACK, 0, 0);
  }
}
