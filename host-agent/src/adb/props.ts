/** Parses `getprop`'s dump: one `[name]: [value]` per line (values may span lines). */
export function parseGetpropDump(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const match of text.matchAll(/^\[([^\]\n]+)\]: \[([\s\S]*?)\]$/gm)) props.set(match[1]!, match[2]!);
  return props;
}

/** Property names as Android allows them; anything else would be shell syntax. */
export function isPropertyName(name: string): boolean {
  return /^[A-Za-z0-9_.@:-]{1,256}$/.test(name);
}
