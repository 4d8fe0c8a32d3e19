/** How one piece of text reaches the focused field. */
export interface TextRun {
  /** `type`: scrcpy's INJECT_TEXT (key events); `paste`: set the clipboard and press PASTE. */
  readonly via: 'type' | 'paste';
  readonly text: string;
}

/**
 * Android types INJECT_TEXT through the virtual keyboard's key map, which has printable ASCII,
 * tab and newline: every other character (Chinese, Japanese, Korean, emoji, and the accented
 * letters keyboards differ on) is silently dropped on a real phone. Those go through the clipboard.
 */
export function isKeyTypable(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  return (code >= 0x20 && code <= 0x7e) || char === '\n' || char === '\t';
}

/** Splits text into runs that keep their order: typable stretches and the stretches between them. */
export function textRuns(text: string): TextRun[] {
  const runs: { via: 'type' | 'paste'; text: string }[] = [];
  // By code point, so a surrogate pair (emoji) is never split.
  for (const char of text) {
    const via = isKeyTypable(char) ? 'type' : 'paste';
    const last = runs.at(-1);
    if (last?.via === via) last.text += char;
    else runs.push({ via, text: char });
  }
  return runs;
}
