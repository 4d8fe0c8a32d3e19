import { EventEmitter } from 'node:events';
import type { Clipboard } from './clipboard.js';
import { charForKey, KEYCODE, META_CTRL_ON } from './keyboard.js';

/**
 * The text field that has input focus: what typed keys, injected text and pastes edit, as an
 * EditText would. Tests read it directly or over adb with `uiautomator dump`.
 */
export class FocusedField extends EventEmitter<{ change: [string] }> {
  #text = '';
  readonly #clipboard: Clipboard;

  constructor(clipboard: Clipboard) {
    super();
    this.#clipboard = clipboard;
  }

  get text(): string {
    return this.#text;
  }

  clear(): void {
    this.#set('');
  }

  /** Characters the keyboard produced (never more than key events can carry: see keyboard.ts). */
  type(text: string): void {
    if (text !== '') this.#set(this.#text + text);
  }

  /** A key-down reaching the field: characters, delete, and the clipboard keys and shortcuts. */
  key(keyCode: number, metaState: number): void {
    const ctrl = (metaState & META_CTRL_ON) !== 0;
    if (keyCode === KEYCODE.PASTE || (ctrl && keyCode === KEYCODE.V)) this.type(this.#clipboard.text ?? '');
    else if (keyCode === KEYCODE.COPY || (ctrl && keyCode === KEYCODE.C)) this.#copy();
    else if (keyCode === KEYCODE.CUT || (ctrl && keyCode === KEYCODE.X)) {
      this.#copy();
      this.clear();
    } else if (keyCode === KEYCODE.DEL) {
      // One code point, so a deleted emoji leaves no lone surrogate.
      this.#set([...this.#text].slice(0, -1).join(''));
    } else {
      const char = charForKey(keyCode, metaState);
      if (char !== undefined) this.type(char);
    }
  }

  /** With no selection model, copy takes the whole field, as select-all then copy would. */
  #copy(): void {
    if (this.#text !== '') this.#clipboard.set(this.#text, 'phone');
  }

  #set(text: string): void {
    this.#text = text;
    this.emit('change', text);
  }
}
