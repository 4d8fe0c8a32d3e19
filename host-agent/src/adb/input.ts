import { AdbInvalidArgumentError } from './errors.js';
import { shellQuote } from './output.js';

/** One input action, in device screen pixels (origin top-left). */
export type InputAction =
  | { kind: 'tap'; x: number; y: number; durationMs?: number }
  | { kind: 'swipe'; fromX: number; fromY: number; toX: number; toY: number; durationMs?: number }
  | { kind: 'key'; keycode: number | string; longpress?: boolean }
  | { kind: 'text'; text: string };

const MAX_TEXT_BYTES = 4096;

function coordinate(field: string, value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 100_000) {
    throw new AdbInvalidArgumentError(field, value, 'must be a pixel coordinate (integer, 0 to 100000)');
  }
  return String(value);
}

function duration(field: string, value: number | undefined, fallback: number): string {
  const ms = value === undefined || value === 0 ? fallback : value;
  if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) {
    throw new AdbInvalidArgumentError(field, value, 'must be milliseconds (integer, 0 to 60000)');
  }
  return String(ms);
}

/**
 * `input text` reads its argument after the shell did: the shell's quoting is removed by
 * single-quoting, and spaces, which `input` cannot take, become its `%s` escape. Control
 * characters have no keyboard equivalent and are refused.
 */
export function escapeInputText(text: string): string {
  if (text.length === 0) throw new AdbInvalidArgumentError('text', text, 'must not be empty');
  if (Buffer.byteLength(text, 'utf8') > MAX_TEXT_BYTES) {
    throw new AdbInvalidArgumentError(
      'text',
      `${text.slice(0, 32)}…`,
      `must be at most ${MAX_TEXT_BYTES} bytes`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (/[\u0000-\u001f\u007f]/.test(text)) {
    throw new AdbInvalidArgumentError('text', text, 'must not contain control characters (newline, tab …)');
  }
  return shellQuote(text.replaceAll(' ', '%s'));
}

/** The `input …` command line for one action. */
export function inputCommand(action: InputAction): string {
  switch (action.kind) {
    case 'tap': {
      const x = coordinate('tap.x', action.x);
      const y = coordinate('tap.y', action.y);
      // A held tap is a swipe that does not move: that is how `input` expresses a long press.
      if (action.durationMs)
        return `input swipe ${x} ${y} ${x} ${y} ${duration('tap.durationMs', action.durationMs, 50)}`;
      return `input tap ${x} ${y}`;
    }
    case 'swipe':
      return [
        'input swipe',
        coordinate('swipe.fromX', action.fromX),
        coordinate('swipe.fromY', action.fromY),
        coordinate('swipe.toX', action.toX),
        coordinate('swipe.toY', action.toY),
        duration('swipe.durationMs', action.durationMs, 300),
      ].join(' ');
    case 'key': {
      const { keycode } = action;
      const valid =
        typeof keycode === 'number'
          ? Number.isInteger(keycode) && keycode > 0 && keycode < 1000
          : /^KEYCODE_[A-Z0-9_]+$/.test(keycode);
      if (!valid)
        throw new AdbInvalidArgumentError(
          'key.keycode',
          keycode,
          'must be an Android key code (1-999 or KEYCODE_*)',
        );
      return `input keyevent ${action.longpress ? '--longpress ' : ''}${keycode}`;
    }
    case 'text':
      return `input text ${escapeInputText(action.text)}`;
  }
}
