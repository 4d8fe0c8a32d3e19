// Physical keys (KeyboardEvent.code, layout-independent) to Android key codes
// (android.view.KeyEvent.KEYCODE_*), and modifier state to Android meta state. Printable characters
// do not go through this table: they go to the phone as text (see element.ts), so any layout and
// any input method types what the user sees.

const LETTERS = Object.fromEntries(
  Array.from({ length: 26 }, (_, i) => [`Key${String.fromCharCode(65 + i)}`, 29 + i]),
);
const DIGITS = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`Digit${i}`, 7 + i]));
const NUMPAD = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`Numpad${i}`, 144 + i]));
const FUNCTION = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`F${i + 1}`, 131 + i]));

/** KeyboardEvent.code -> Android key code. Tab is left out on purpose: it moves focus. */
export const ANDROID_KEYCODES: Readonly<Record<string, number>> = {
  ...LETTERS,
  ...DIGITS,
  ...NUMPAD,
  ...FUNCTION,
  Enter: 66,
  NumpadEnter: 160,
  Backspace: 67,
  Delete: 112,
  Escape: 111,
  Space: 62,
  ArrowUp: 19,
  ArrowDown: 20,
  ArrowLeft: 21,
  ArrowRight: 22,
  Home: 122,
  End: 123,
  PageUp: 92,
  PageDown: 93,
  Insert: 124,
  Minus: 69,
  Equal: 70,
  BracketLeft: 71,
  BracketRight: 72,
  Backslash: 73,
  Semicolon: 74,
  Quote: 75,
  Backquote: 68,
  Comma: 55,
  Period: 56,
  Slash: 76,
  NumpadAdd: 157,
  NumpadSubtract: 156,
  NumpadMultiply: 155,
  NumpadDivide: 154,
  NumpadDecimal: 158,
  ShiftLeft: 59,
  ShiftRight: 60,
  ControlLeft: 113,
  ControlRight: 114,
  AltLeft: 57,
  AltRight: 58,
  MetaLeft: 117,
  MetaRight: 118,
  CapsLock: 115,
  NumLock: 143,
  ScrollLock: 116,
  PrintScreen: 120,
  Pause: 121,
  ContextMenu: 82,
  AudioVolumeUp: 24,
  AudioVolumeDown: 25,
  AudioVolumeMute: 164,
  MediaPlayPause: 85,
  MediaTrackNext: 87,
  MediaTrackPrevious: 88,
  BrowserBack: 4,
  BrowserSearch: 84,
};

/** android.view.KeyEvent META_* flags. */
export const META = {
  SHIFT_ON: 0x1,
  ALT_ON: 0x2,
  ALT_LEFT_ON: 0x10,
  ALT_RIGHT_ON: 0x20,
  SHIFT_LEFT_ON: 0x40,
  SHIFT_RIGHT_ON: 0x80,
  CTRL_ON: 0x1000,
  CTRL_LEFT_ON: 0x2000,
  META_ON: 0x10000,
  META_LEFT_ON: 0x20000,
  CAPS_LOCK_ON: 0x100000,
  NUM_LOCK_ON: 0x200000,
} as const;

type Modifiers = Pick<KeyboardEvent, 'shiftKey' | 'altKey' | 'ctrlKey' | 'metaKey' | 'getModifierState'>;

/** The Android meta state of a keyboard event's modifiers. */
export function metaState(e: Modifiers): number {
  let meta = 0;
  if (e.shiftKey) meta |= META.SHIFT_ON | META.SHIFT_LEFT_ON;
  if (e.altKey) meta |= META.ALT_ON | META.ALT_LEFT_ON;
  if (e.ctrlKey) meta |= META.CTRL_ON | META.CTRL_LEFT_ON;
  if (e.metaKey) meta |= META.META_ON | META.META_LEFT_ON;
  if (e.getModifierState?.('CapsLock')) meta |= META.CAPS_LOCK_ON;
  if (e.getModifierState?.('NumLock')) meta |= META.NUM_LOCK_ON;
  return meta;
}

/**
 * Whether a key press types a character the text path delivers (a single printable `key` with no
 * Ctrl, Alt or Meta): such keys are not sent as key codes.
 */
export function isTyping(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'altKey' | 'metaKey'>): boolean {
  return [...e.key].length === 1 && !e.ctrlKey && !e.altKey && !e.metaKey;
}
