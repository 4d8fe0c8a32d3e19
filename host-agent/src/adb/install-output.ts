/** What `pm install` / `cmd package install` printed, classified. */
export type InstallOutcome = { ok: true } | { ok: false; failureReason: string; detail: string };

/**
 * Parses pm's answer: `Success`, or `Failure [INSTALL_FAILED_X: detail]` (also `Failure [X]`,
 * prefixed by `adb: failed to install …:` on some builds). Anything else with a failing exit
 * status becomes INSTALL_FAILED_UNKNOWN carrying the last line printed (e.g. `Error: …`).
 */
export function parseInstallOutput(output: string, exitCode: number): InstallOutcome {
  const failure = /Failure \[([A-Z0-9_]+)(?::\s*([^\]\n]*))?\]/.exec(output);
  if (failure) return { ok: false, failureReason: failure[1]!, detail: (failure[2] ?? '').trim() };
  if (/^Success\s*$/m.test(output) && exitCode <= 0) return { ok: true };
  const lastLine =
    output
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? `pm exited with status ${exitCode} and printed nothing`;
  return { ok: false, failureReason: 'INSTALL_FAILED_UNKNOWN', detail: lastLine };
}
