// The plumbing every command shares: global flags, the API, output, and examples in --help.
import type { DescMessage } from '@bufbuild/protobuf';
import type { Command } from 'commander';
import { type Api, connectApi } from './api.js';
import { UsageError } from './errors.js';
import { createOut, type Out } from './output.js';

export interface Globals {
  context?: string;
  server?: string;
  tenant?: string;
  output?: string;
  quiet?: boolean;
  color?: boolean;
}

export interface Ctx {
  readonly globals: Globals;
  readonly out: Out;
  /** The API of the chosen context (connects on first use). */
  api(): Promise<Api>;
  /** The tenant to act for: --tenant, else the context's, else "" (the caller's own). */
  tenant(): Promise<string>;
}

export function contextOf(command: Command): Ctx {
  const globals = command.optsWithGlobals() as Globals;
  const out = createOut(globals);
  let api: Promise<Api> | undefined;
  const ctx: Ctx = {
    globals,
    out,
    api: () => {
      api ??= connectApi(globals);
      return api;
    },
    tenant: async () => (await ctx.api()).target.tenant ?? '',
  };
  return ctx;
}

/**
 * A commander action that gets the context, its positional arguments and its own options.
 * (commander passes args..., options, command.)
 */
export function action<O extends object = Record<string, unknown>>(
  fn: (ctx: Ctx, args: unknown[], opts: O) => Promise<void>,
): (...params: unknown[]) => Promise<void> {
  return async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    await fn(contextOf(command), params.slice(0, -2), command.opts() as O);
  };
}

/** Each command's examples, for the generated reference (commands/docs.ts). */
export const EXAMPLES = new WeakMap<Command, readonly string[]>();

/** Appends an Examples section to a command's --help. */
export function examples(command: Command, lines: readonly string[]): Command {
  EXAMPLES.set(command, lines);
  return command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
}

/** Collects a repeatable option into a list (`--label a=b --label c=d`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function intOption(flag: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`${flag} "${value}" must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Asks for --yes on destructive commands (never prompts: scripts and 3 a.m. both want certainty). */
export function requireYes(opts: { yes?: boolean }, what: string): void {
  if (!opts.yes) throw new UsageError(`${what} cannot be undone: add --yes to go ahead`);
}

/** Resolves when the process gets SIGINT/SIGTERM, so long waits can stop without killing work. */
export function interrupted(): { promise: Promise<string>; dispose(): void } {
  let dispose = () => {};
  const promise = new Promise<string>((resolve) => {
    const on = (signal: NodeJS.Signals) => () => resolve(signal);
    const int = on('SIGINT');
    const term = on('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
    dispose = () => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    };
  });
  return { promise, dispose: () => dispose() };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * `--dry-run` as the request's validate_only (AIP-163): every check runs, nothing is committed.
 * A request without that field is refused here: the server would ignore the flag and commit.
 */
export function dryRun(opts: { dryRun?: boolean }, schema: DescMessage): { validateOnly?: boolean } {
  if (opts.dryRun && !schema.fields.some((f) => f.localName === 'validateOnly')) {
    throw new UsageError(`--dry-run: ${schema.typeName} has no validate_only in this version of the API`);
  }
  return opts.dryRun ? { validateOnly: true } : {};
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** "500ms", "90s", "10m", "2h", "1d", "1w", "1y" in milliseconds. */
export function durationMs(value: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h|d|w|y)$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag} "${value}" is not a duration such as 500ms, 90s, 10m, 2h or 1d`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** The same as a protobuf Duration. */
export function protoDuration(value: string, flag: string): { seconds: bigint; nanos: number } {
  const ms = durationMs(value, flag);
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}
