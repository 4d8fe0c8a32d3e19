import { EventEmitter } from 'node:events';
import type { InstalledPackage } from './android/package-manager.js';
import type { ControlMessage } from './scrcpy/control-decoder.js';

/** MotionEvent actions as the app sees them (ACTION_POINTER_* when another pointer is down). */
export type MotionAction =
  | 'down'
  | 'up'
  | 'move'
  | 'cancel'
  | 'pointer-down'
  | 'pointer-up'
  | 'hover-move'
  | 'hover-enter'
  | 'hover-exit'
  | 'button-press'
  | 'button-release'
  | 'other';

/**
 * What reached the phone's input system: `input` shell commands (tap, swipe, keyevent, text) and
 * events injected by scrcpy's server (motion with display coordinates, key, scroll).
 */
export type InputEvent =
  | { kind: 'tap'; x: number; y: number }
  | { kind: 'swipe'; x1: number; y1: number; x2: number; y2: number; durationMs: number }
  | { kind: 'keyevent'; key: string; longpress: boolean }
  | { kind: 'text'; text: string }
  | {
      kind: 'motion';
      action: MotionAction;
      /** scrcpy's pointer id (-1 mouse, -2 generic finger, else the client's id). */
      pointerId: bigint;
      /** Display coordinates in the rotation the display had (what MotionEvent.getX/Y return). */
      x: number;
      y: number;
      pressure: number;
      /** Pointers down, this one included (MotionEvent.getPointerCount). */
      pointerCount: number;
      tool: 'finger' | 'mouse';
      /** Surface.ROTATION_* of the display. */
      rotation: number;
    }
  | { kind: 'key'; action: 'down' | 'up'; keyCode: number; metaState: number; repeat: number }
  | { kind: 'scroll'; x: number; y: number; hScroll: number; vScroll: number; buttons: number };

export interface PhoneEventMap {
  input: [InputEvent];
  control: [ControlMessage];
  package: [{ kind: 'installed' | 'uninstalled'; pkg: InstalledPackage }];
  reboot: [];
  /** adbd restarts (after `adb root` / `adb unroot`): every adb connection drops, Android runs on. */
  'adbd-restart': [];
  boot: [];
}

/**
 * Everything a test wants to observe on the phone: recorded in arrays and emitted as it happens.
 * `next()` waits for the next matching event so tests need no polling.
 */
export class PhoneEvents extends EventEmitter<PhoneEventMap> {
  readonly input: InputEvent[] = [];
  readonly control: ControlMessage[] = [];

  recordInput(event: InputEvent): void {
    this.input.push(event);
    this.emit('input', event);
  }

  recordControl(message: ControlMessage): void {
    this.control.push(message);
    this.emit('control', message);
  }

  /** Resolves with the first `control` message (already recorded or future) matching `predicate`. */
  waitForControl(predicate: (message: ControlMessage) => boolean, timeoutMs = 5000): Promise<ControlMessage> {
    return this.#waitFor('control', this.control, predicate, timeoutMs);
  }

  waitForInput(predicate: (event: InputEvent) => boolean, timeoutMs = 5000): Promise<InputEvent> {
    return this.#waitFor('input', this.input, predicate, timeoutMs);
  }

  #waitFor<K extends 'control' | 'input'>(
    name: K,
    seen: readonly PhoneEventMap[K][0][],
    predicate: (value: PhoneEventMap[K][0]) => boolean,
    timeoutMs: number,
  ): Promise<PhoneEventMap[K][0]> {
    const found = seen.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const listener = (value: PhoneEventMap[K][0]): void => {
        if (!predicate(value)) return;
        clearTimeout(timer);
        this.off(name, listener as never);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.off(name, listener as never);
        reject(new Error(`no matching ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on(name, listener as never);
    });
  }
}
