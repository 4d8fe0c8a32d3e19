// What a viewer sends over its input data channel, and what the phone sends back on it: JSON
// messages, one per data channel message. The sfu checks every message against this contract
// before anything reaches the phone (a malformed one closes that viewer's session with a reason),
// and the host agent turns checked messages into scrcpy control messages. Coordinates are in the
// video frame the viewer sees (`frameWidth` x `frameHeight`, what it decodes); the agent maps them
// to the phone's screen, rotation included.

/** A pointer (finger, mouse, pen) touching the screen, by the browser's pointer id. */
export interface TouchInput {
  readonly type: 'touch';
  readonly action: 'down' | 'move' | 'up' | 'cancel';
  /** The browser's pointer id; several may be down at once (multi-touch). 0..2^31-1. */
  readonly pointerId: number;
  readonly x: number;
  readonly y: number;
  /** 0..1; 0 on up. */
  readonly pressure: number;
  readonly frameWidth: number;
  readonly frameHeight: number;
}

/** A wheel or trackpad scroll at a point, in notches (positive: right, down). */
export interface ScrollInput {
  readonly type: 'scroll';
  readonly x: number;
  readonly y: number;
  readonly frameWidth: number;
  readonly frameHeight: number;
  /** -16..16 */
  readonly dx: number;
  /** -16..16 */
  readonly dy: number;
}

/** An Android key event (KeyEvent.KEYCODE_*, META_* state). */
export interface KeyInput {
  readonly type: 'key';
  readonly action: 'down' | 'up';
  /** Android key code, 0..400. */
  readonly keycode: number;
  /** Android meta state bits (META_SHIFT_ON ...). */
  readonly metaState: number;
  /** Auto-repeat count, 0 for the first press. */
  readonly repeat: number;
}

/** Text to type into the focused field, in any script: the agent types what key events can carry and pastes the rest. */
export interface TextInput {
  readonly type: 'text';
  /** 1..4096 UTF-8 bytes. */
  readonly text: string;
}

/** Sets the phone's clipboard; with `paste`, pastes it into the focused field too. */
export interface ClipboardInput {
  readonly type: 'clipboard';
  /** 0..65536 UTF-8 bytes. */
  readonly text: string;
  readonly paste: boolean;
}

/** Asks for the phone's clipboard: answered by a `clipboard` message to the viewer. */
export interface GetClipboardInput {
  readonly type: 'get-clipboard';
}

export type NavButton = 'back' | 'home' | 'app-switch' | 'power' | 'volume-up' | 'volume-down';

/** A system button. */
export interface NavInput {
  readonly type: 'nav';
  readonly button: NavButton;
}

/** Rotates the phone's screen by 90 degrees. */
export interface RotateInput {
  readonly type: 'rotate';
}

export type ViewerInput =
  | TouchInput
  | ScrollInput
  | KeyInput
  | TextInput
  | ClipboardInput
  | GetClipboardInput
  | NavInput
  | RotateInput;

/** What the phone sends a viewer on the same channel. */
export type PhoneOutput =
  /** The phone's clipboard changed, or a get-clipboard was answered. */
  { readonly type: 'clipboard'; readonly text: string };

/** Why a message broke the contract: the field and what was wrong. */
export class InputError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`input ${field}: ${reason}`);
  }
}

/** The largest data channel message accepted, in bytes (a clipboard of 64 KiB plus framing). */
export const MAX_INPUT_BYTES = 80 * 1024;

const NAV_BUTTONS: readonly NavButton[] = ['back', 'home', 'app-switch', 'power', 'volume-up', 'volume-down'];

function object(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InputError('message', 'must be a JSON object');
  return value as Record<string, unknown>;
}

function num(m: Record<string, unknown>, field: string, min: number, max: number, integer = false): number {
  const v = m[field];
  if (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    v < min ||
    v > max ||
    (integer && !Number.isInteger(v))
  ) {
    throw new InputError(field, `must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return v;
}

function oneOf<T extends string>(m: Record<string, unknown>, field: string, values: readonly T[]): T {
  const v = m[field];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw new InputError(field, `must be one of ${values.join(', ')}`);
  }
  return v as T;
}

function text(m: Record<string, unknown>, field: string, minBytes: number, maxBytes: number): string {
  const v = m[field];
  if (typeof v !== 'string') throw new InputError(field, 'must be a string');
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes < minBytes || bytes > maxBytes)
    throw new InputError(field, `must be ${minBytes}..${maxBytes} UTF-8 bytes`);
  if (v.includes('\u0000')) throw new InputError(field, 'must not contain NUL');
  return v;
}

function frame(m: Record<string, unknown>) {
  const frameWidth = num(m, 'frameWidth', 1, 16384, true);
  const frameHeight = num(m, 'frameHeight', 1, 16384, true);
  return { frameWidth, frameHeight, x: num(m, 'x', 0, frameWidth), y: num(m, 'y', 0, frameHeight) };
}

/** Checks one data channel message (its raw text) against the contract; throws InputError naming the field. */
export function parseViewerInput(raw: string): ViewerInput {
  if (Buffer.byteLength(raw, 'utf8') > MAX_INPUT_BYTES)
    throw new InputError('message', `must be at most ${MAX_INPUT_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new InputError('message', 'must be JSON');
  }
  const m = object(parsed);
  const type = m.type;
  switch (type) {
    case 'touch':
      return {
        type,
        action: oneOf(m, 'action', ['down', 'move', 'up', 'cancel'] as const),
        pointerId: num(m, 'pointerId', 0, 2 ** 31 - 1, true),
        pressure: num(m, 'pressure', 0, 1),
        ...frame(m),
      };
    case 'scroll':
      return { type, dx: num(m, 'dx', -16, 16), dy: num(m, 'dy', -16, 16), ...frame(m) };
    case 'key':
      return {
        type,
        action: oneOf(m, 'action', ['down', 'up'] as const),
        keycode: num(m, 'keycode', 0, 400, true),
        metaState: num(m, 'metaState', 0, 2 ** 31 - 1, true),
        repeat: num(m, 'repeat', 0, 2 ** 31 - 1, true),
      };
    case 'text':
      return { type, text: text(m, 'text', 1, 4096) };
    case 'clipboard': {
      if (typeof m.paste !== 'boolean') throw new InputError('paste', 'must be a boolean');
      return { type, text: text(m, 'text', 0, 65536), paste: m.paste };
    }
    case 'get-clipboard':
      return { type };
    case 'nav':
      return { type, button: oneOf(m, 'button', NAV_BUTTONS) };
    case 'rotate':
      return { type };
    default:
      throw new InputError(
        'type',
        `must be one of touch, scroll, key, text, clipboard, get-clipboard, nav, rotate`,
      );
  }
}
