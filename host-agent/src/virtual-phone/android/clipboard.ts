import { EventEmitter } from 'node:events';

/** Who changed the clipboard; scrcpy's server does not echo its own SET_CLIPBOARD back. */
export type ClipboardSource = 'scrcpy' | 'phone';

/** ClipboardManager's primary clip, text only. */
export class Clipboard extends EventEmitter<{ change: [string, ClipboardSource] }> {
  #text: string | undefined;

  /** Undefined until something is copied, as getPrimaryClip() returns null on a fresh phone. */
  get text(): string | undefined {
    return this.#text;
  }

  /** Forgotten without a change event, as a reboot forgets it. */
  clear(): void {
    this.#text = undefined;
  }

  set(text: string, source: ClipboardSource): void {
    this.#text = text;
    this.emit('change', text, source);
  }
}
