// Which phones a verb acts on (names, ids, or a label selector), how it reports on each of many
// (one line per phone, a non-zero exit if any failed), and waiting for phones to reach a state.
import { Code, ConnectError } from '@connectrpc/connect';
import { type Device, DeviceSchema, DeviceState } from '@cphone/proto/api';
import { type Ctx, interrupted, sleep } from '../lib/command.js';
import { CliError, EXIT, type RenderedError, renderError, UsageError } from '../lib/errors.js';
import { enumText, jsonOf, labelsFrom, labelsText, printDoc } from '../lib/output.js';
import { createProgress } from '../lib/progress.js';
import { listDevices, resolveDevice } from '../lib/resolve.js';

export interface TargetFlags {
  selector?: string[];
  allTenants?: boolean;
}

/** A phone a command was asked to act on: found, or why not. */
export interface Target {
  name: string;
  device?: Device;
  error?: unknown;
}

export async function selectDevices(
  ctx: Ctx,
  names: readonly string[],
  opts: TargetFlags,
): Promise<Target[]> {
  if (!names.length && !opts.selector?.length) {
    throw new UsageError('name one or more phones, or choose them with --selector k=v');
  }
  const api = await ctx.api();
  const tenantId = await ctx.tenant();
  const targets: Target[] = [];
  for (const name of names) {
    try {
      targets.push({ name, device: await resolveDevice(api, name, tenantId) });
    } catch (error) {
      targets.push({ name, error });
    }
  }
  if (opts.selector?.length) {
    const selector = labelsFrom(opts.selector);
    const matched = await listDevices(api, {
      tenantId,
      labelSelector: selector,
      includeDescendants: Boolean(opts.allTenants),
    });
    if (!matched.length) ctx.out.note(`no phones match --selector ${labelsText(selector)}`);
    // By name, as `devices get` lists them (the API lists newest first).
    const byName = [...matched].sort((a, b) =>
      (a.displayName || a.deviceId).localeCompare(b.displayName || b.deviceId, undefined, { numeric: true }),
    );
    for (const d of byName) targets.push({ name: d.displayName || d.deviceId, device: d });
  }
  const seen = new Set<string>();
  return targets.filter((t) => !t.device || (!seen.has(t.device.deviceId) && seen.add(t.device.deviceId)));
}

export interface Outcome {
  name: string;
  device?: Device;
  error?: RenderedError;
  unchanged?: string;
}

export interface Report {
  items: Outcome[];
  /** Throws when any phone failed: with their common exit code, else 1. */
  check(): void;
}

/** Runs `fn` on each found phone (a few at a time) and prints one line per phone. */
export async function forEachDevice(
  ctx: Ctx,
  targets: readonly Target[],
  doing: string,
  fn: (d: Device) => Promise<{ device?: Device | undefined }>,
  options: {
    dryRun?: boolean;
    /** Why a phone needs nothing done (already so): reported as unchanged, not sent. */
    unchanged?: (d: Device) => string | undefined;
  } = {},
): Promise<Report> {
  const items: Outcome[] = targets.map((t) => ({
    name: t.name,
    ...(t.device ? { device: t.device } : {}),
    ...(t.error ? { error: renderError(t.error) } : {}),
  }));
  const structured = ctx.out.format === 'json' || ctx.out.format === 'yaml';
  const line = (o: Outcome) => {
    if (structured) return;
    if (o.error)
      process.stderr.write(`error: device/${o.name}: ${o.error.message.replace(/^error: /, '')}\n`);
    else if (ctx.out.format === 'name') ctx.out.write(`${o.name}\n`);
    else if (o.unchanged) ctx.out.write(`device/${o.name} unchanged (${o.unchanged})\n`);
    else ctx.out.write(`device/${o.name} ${doing}${options.dryRun ? ' (dry run)' : ''}\n`);
  };
  for (const o of items) if (o.error) line(o);
  let next = 0;
  const work = items.filter((o) => !o.error);
  const worker = async () => {
    while (next < work.length) {
      const o = work[next++] as Outcome;
      try {
        const unchanged = options.unchanged?.(o.device as Device);
        if (unchanged) {
          o.unchanged = unchanged;
          line(o);
          continue;
        }
        const res = await fn(o.device as Device);
        if (res.device) o.device = res.device;
      } catch (e) {
        o.error = renderError(e);
      }
      line(o);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, work.length) }, worker));
  if (structured) {
    printDoc(ctx.out, {
      items: items.map((o) => ({
        name: o.name,
        ok: !o.error,
        ...(o.unchanged ? { unchanged: o.unchanged } : {}),
        ...(o.device ? { device: jsonOf(DeviceSchema, o.device) } : {}),
        ...(o.error ? { error: o.error.message.replace(/^error: /, ''), exitCode: o.error.exitCode } : {}),
      })),
    });
  }
  return {
    items,
    check() {
      const failed = items.filter((o) => o.error);
      if (!failed.length) return;
      const codes = new Set(failed.map((o) => o.error?.exitCode));
      const code = codes.size === 1 ? ([...codes][0] ?? EXIT.failure) : EXIT.failure;
      throw new CliError(`${failed.length} of ${items.length} phone(s) failed`, code);
    },
  };
}

/**
 * The phones as they are now (undefined: gone). A few are read one by one; many with one list of
 * the tenant's phones, so a wait on 500 phones costs a request per poll, not 500.
 */
export async function refreshDevices(
  ctx: Ctx,
  devices: readonly Device[],
): Promise<Map<string, Device | undefined>> {
  const api = await ctx.api();
  const now = new Map<string, Device | undefined>();
  if (devices.length > 20) {
    const all = await listDevices(api, { tenantId: await ctx.tenant(), includeDescendants: true });
    const byId = new Map(all.map((d) => [d.deviceId, d]));
    for (const d of devices) now.set(d.deviceId, byId.get(d.deviceId));
    return now;
  }
  await Promise.all(
    devices.map(async (d) => {
      try {
        now.set(d.deviceId, (await api.devices.getDevice({ deviceId: d.deviceId })).device);
      } catch (e) {
        if (ConnectError.from(e).code !== Code.NotFound) throw e;
        now.set(d.deviceId, undefined);
      }
    }),
  );
  return now;
}

/** "90s", "10m", "2h", "500ms" in milliseconds. */

/**
 * Polls the phones until each is in `want` (DELETED also when it is gone). A phone that goes to
 * ERROR fails the wait at once, naming its reason; Ctrl-C stops waiting, not the phones.
 */
export async function waitForDevices(
  ctx: Ctx,
  devices: readonly Device[],
  want: DeviceState,
  timeoutMs: number,
): Promise<Device[]> {
  const wantText = enumText(DeviceState, want).toLowerCase();
  const current = new Map(devices.map((d) => [d.deviceId, d]));
  const reached = (d: Device | undefined) => !d || d.state === want;
  const bar = createProgress({
    total: devices.length,
    format: `waiting for ${wantText} {bar} {value}/{total}`,
    quiet: ctx.out.quiet,
  });
  const deadline = Date.now() + timeoutMs;
  const stop = interrupted();
  const gone = new Set<string>();
  try {
    for (;;) {
      const done = [...current.values()].filter((d) => reached(d) || gone.has(d.deviceId)).length;
      bar.update(done);
      const failed = [...current.values()].filter(
        (d) => d.state === DeviceState.ERROR && want !== DeviceState.ERROR,
      );
      if (failed.length) {
        bar.stop();
        throw new CliError(
          `${failed.length} phone(s) failed: ${failed.map((d) => `${d.displayName || d.deviceId}: ${d.stateReason || 'ERROR'}${d.stateMessage ? ` (${d.stateMessage})` : ''}`).join('; ')}`,
        );
      }
      if (done === current.size) break;
      if (Date.now() > deadline) {
        bar.stop();
        const late = [...current.values()].filter((d) => !reached(d) && !gone.has(d.deviceId));
        throw new CliError(
          `timed out: ${late.length} phone(s) not ${wantText} yet (${late.map((d) => `${d.displayName || d.deviceId}: ${enumText(DeviceState, d.state).toLowerCase()}`).join(', ')})`,
          EXIT.unavailable,
        );
      }
      if (await Promise.race([sleep(1000).then(() => false), stop.promise.then(() => true)])) {
        bar.stop();
        ctx.out.note('stopped waiting; the phones carry on');
        throw new CliError('interrupted', EXIT.interrupted);
      }
      const pending = [...current.values()].filter((d) => !reached(d) && !gone.has(d.deviceId));
      for (const [id, d] of await refreshDevices(ctx, pending)) {
        if (d) current.set(id, d);
        else if (want === DeviceState.DELETED) gone.add(id);
        else throw new CliError(`NOT_FOUND: phone ${id} is gone`, EXIT.notFound);
      }
    }
  } finally {
    stop.dispose();
  }
  bar.stop(`${current.size} phone(s) ${wantText}`);
  return [...current.values()];
}
