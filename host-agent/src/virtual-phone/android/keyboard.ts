// What Android's virtual keyboard (KeyCharacterMap.VIRTUAL_KEYBOARD) can type: the characters key
// events carry, so text injected as key events (scrcpy's INJECT_TEXT, `input text`) reaches an app
// only for these; anything else needs the clipboard or an IME.

export const KEYCODE = {
  TAB: 61,
  SPACE: 62,
  ENTER: 66,
  DEL: 67,
  FORWARD_DEL: 112,
  BACK: 4,
  HOME: 3,
  APP_SWITCH: 187,
  POWER: 26,
  VOLUME_UP: 24,
  VOLUME_DOWN: 25,
  CUT: 277,
  COPY: 278,
  PASTE: 279,
  A: 29,
  C: 31,
  V: 50,
  X: 52,
} as const;

export const META_SHIFT_ON = 0x1;
export const META_CTRL_ON = 0x1000;
export const META_CAPS_LOCK_ON = 0x100000;

/**
 * The accented letters scrcpy's KeyComposition turns into a dead key plus a base letter (its
 * table, verbatim), which the virtual keyboard can then type.
 */
const COMPOSABLE =
  'ÀÈÌÒÙàèìòùǸǹẀẁỲỳÁÉÍÓÚÝáéíóúýĆćĹĺŃńŔŕŚśŹźǴǵḈḉḰḱḾḿṔṕẂẃÂÊÎÔÛâêîôûĈĉĜĝĤĥĴĵŜŝŴŵŶŷẐẑ' +
  'ÃÑÕãñõĨĩŨũẼẽỸỹÄËÏÖÜäëïöüÿŸḦḧẄẅẌẍẗ';

/**
 * Whether one UTF-16 code unit can be typed with key events. Java's String.toCharArray() is what
 * the server iterates, so an emoji arrives as two surrogates, neither typable.
 */
export function isTypable(unit: string): boolean {
  const code = unit.charCodeAt(0);
  return (code >= 0x20 && code <= 0x7e) || unit === '\n' || unit === '\t' || COMPOSABLE.includes(unit);
}

// US layout, as Generic.kcm / Virtual.kcm map it.
const DIGITS = '0123456789';
const SHIFTED_DIGITS = ')!@#$%^&*(';
const PUNCTUATION: Record<number, [string, string]> = {
  55: [',', '<'],
  56: ['.', '>'],
  68: ['`', '~'],
  69: ['-', '_'],
  70: ['=', '+'],
  71: ['[', '{'],
  72: [']', '}'],
  73: ['\\', '|'],
  74: [';', ':'],
  75: ["'", '"'],
  76: ['/', '?'],
  77: ['@', '@'],
  81: ['+', '+'],
  17: ['*', '*'],
  18: ['#', '#'],
};

/** The character a key-down produces in a text field, if any. */
export function charForKey(keyCode: number, metaState: number): string | undefined {
  if (metaState & META_CTRL_ON) return undefined;
  const shift = (metaState & META_SHIFT_ON) !== 0;
  if (keyCode >= 29 && keyCode <= 54) {
    const letter = String.fromCharCode(97 + keyCode - 29);
    const upper = shift !== ((metaState & META_CAPS_LOCK_ON) !== 0);
    return upper ? letter.toUpperCase() : letter;
  }
  if (keyCode >= 7 && keyCode <= 16) return (shift ? SHIFTED_DIGITS : DIGITS)[keyCode - 7];
  if (keyCode === KEYCODE.SPACE) return ' ';
  if (keyCode === KEYCODE.ENTER) return '\n';
  if (keyCode === KEYCODE.TAB) return '\t';
  const pair = PUNCTUATION[keyCode];
  return pair ? pair[shift ? 1 : 0] : undefined;
}

/** `input keyevent` takes a number or a KEYCODE_* name. */
export function keyCodeFromName(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number.parseInt(name, 10);
  const bare = name.replace(/^KEYCODE_/, '');
  if (/^[A-Z]$/.test(bare)) return 29 + bare.charCodeAt(0) - 65;
  if (/^[0-9]$/.test(bare)) return 7 + Number.parseInt(bare, 10);
  return (KEYCODE as Record<string, number>)[bare];
}
