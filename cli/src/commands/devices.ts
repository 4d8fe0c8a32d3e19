// cphone devices: the phones. get, describe, create, start, stop, reboot, delete here; what is done
// inside a running phone (shell, logs, screenshot, install, push, pull, input, stream) in
// device-actions.ts and device-input.ts.
import { createHash } from 'node:crypto';
import { clone, toJson } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import {
  BatchCreateDevicesRequestSchema,
  CreateDeviceRequestSchema,
  DeleteDeviceRequestSchema,
  type Device,
  type DeviceEvent,
  DeviceEventSchema,
  DeviceSchema,
  DeviceState,
  GpuMode,
  PowerState,
  RebootDeviceRequestSchema,
  RestartPolicy,
  SpreadStrategy,
  StartDeviceRequestSchema,
  StopDeviceRequestSchema,
} from '@cphone/proto/api';
import type { Command } from 'commander';
import { action, type Ctx, collect, dryRun, durationMs, examples, intOption } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import {
  age,
  type Column,
  enumText,
  indent,
  jsonOf,
  labelsFrom,
  labelsText,
  printDoc,
  printResources,
  renderTable,
} from '../lib/output.js';
import { listDevices, listHosts, resolveDevice, resolveHost } from '../lib/resolve.js';
import { deviceRequestFrom, SPEC_OPTIONS, type SpecFlags } from '../lib/spec.js';
import { watchList } from '../lib/watch.js';
import { registerDeviceActions } from './device-actions.js';
import { registerDeviceInput } from './device-input.js';
import {
  forEachDevice,
  refreshDevices,
  selectDevices,
  type TargetFlags,
  waitForDevices,
} from './device-targets.js';

export function stateText(d: Device): string {
  return enumText(DeviceState, d.state);
}

function tintState(text: string, d: Device, paint: Ctx['out']['paint']): string {
  if (d.state === DeviceState.RUNNING) return paint.green(text);
  if (d.state === DeviceState.ERROR || d.state === DeviceState.LOST) return paint.red(text);
  if (d.state === DeviceState.STOPPED || d.state === DeviceState.DELETED) return paint.dim(text);
  return paint.yellow(text);
}

function cpuText(millicores: number | undefined): string {
  if (!millicores) return '-';
  return millicores % 1000 === 0 ? String(millicores / 1000) : `${millicores}m`;
}

function memoryText(mib: number | undefined): string {
  if (!mib) return '-';
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

/** The table's columns; hosts are shown by name where the caller may read hosts, else by id. */
export function deviceColumns(hostNames: ReadonlyMap<string, string>): Column<Device>[] {
  return [
    { header: 'NAME', cell: (d) => d.displayName || d.deviceId },
    { header: 'STATE', cell: stateText, tint: tintState },
    { header: 'HOST', cell: (d) => (d.hostId ? (hostNames.get(d.hostId) ?? d.hostId) : '-') },
    { header: 'IMAGE', cell: (d) => d.spec?.imageId || '-' },
    { header: 'AGE', cell: (d) => age(d.createTime) },
    { header: 'ID', cell: (d) => d.deviceId, wide: true },
    { header: 'TENANT', cell: (d) => d.tenantId, wide: true },
    { header: 'ADB', cell: (d) => d.adbEndpoint || '-', wide: true },
    { header: 'LABELS', cell: (d) => labelsText(d.labels), wide: true },
    { header: 'CPU', cell: (d) => cpuText(d.spec?.vcpuMillicores), wide: true },
    { header: 'MEMORY', cell: (d) => memoryText(d.spec?.memoryMib), wide: true },
  ];
}

/** Host id -> name; empty when the key may not list hosts (tenant keys), so ids are shown. */
export async function hostNamesFor(ctx: Ctx): Promise<Map<string, string>> {
  if (ctx.out.format !== 'table' && ctx.out.format !== 'wide') return new Map();
  const api = await ctx.api();
  const hosts = await listHosts(api).catch(() => []);
  return new Map(hosts.map((h) => [h.hostId, h.name]));
}

/** By name, then id: a list reads the same on every run (the API's order is newest first). */
export const byName = (a: Device, b: Device) =>
  (a.displayName || a.deviceId).localeCompare(b.displayName || b.deviceId) ||
  a.deviceId.localeCompare(b.deviceId);

export function printDevices(
  ctx: Ctx,
  devices: Device[],
  hostNames: ReadonlyMap<string, string>,
  single = false,
): void {
  printResources(ctx.out, DeviceSchema, devices, deviceColumns(hostNames), {
    single,
    name: (d) => d.displayName || d.deviceId,
  });
}

const STATE_NAMES = Object.keys(DeviceState).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');

function parseStates(values: readonly string[] | undefined): DeviceState[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .filter((v) => v.trim())
    .map((v) => {
      const s = (DeviceState as unknown as Record<string, number>)[v.trim().toUpperCase()];
      if (s === undefined || s === DeviceState.UNSPECIFIED) {
        throw new UsageError(
          `--state "${v}" is not a device state: one of ${STATE_NAMES.map((n) => n.toLowerCase()).join(', ')}`,
        );
      }
      return s as DeviceState;
    });
}

function eventColumns(now: number): Column<DeviceEvent>[] {
  return [
    { header: 'AGE', cell: (e) => age(e.createTime, now) },
    {
      header: 'FROM',
      cell: (e) => (e.fromState === DeviceState.UNSPECIFIED ? '-' : enumText(DeviceState, e.fromState)),
    },
    { header: 'TO', cell: (e) => enumText(DeviceState, e.toState) },
    { header: 'REASON', cell: (e) => e.reason || '-' },
    { header: 'MESSAGE', cell: (e) => e.message || '-' },
  ];
}

function when(t: Device['createTime'], now: number): string {
  return t ? `${age(t, now)} ago (${timestampDate(t).toISOString()})` : '-';
}

async function describeDevice(ctx: Ctx, nameOrId: string): Promise<void> {
  const api = await ctx.api();
  const device = await resolveDevice(api, nameOrId, await ctx.tenant());
  const { deviceEvents } = await api.devices.listDeviceEvents({ deviceId: device.deviceId, pageSize: 20 });
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
    printDoc(ctx.out, {
      device: jsonOf(DeviceSchema, device),
      events: deviceEvents.map((e) => jsonOf(DeviceEventSchema, e)),
    });
    return;
  }
  const hostNames = await hostNamesFor(ctx);
  const now = Date.now();
  const s = device.spec;
  const screen = s?.screen
    ? `${s.screen.widthPx}x${s.screen.heightPx}@${s.screen.dpi}dpi ${s.screen.fps}fps`
    : 'image default';
  const p = device.placement;
  const reason = [device.stateReason, device.stateMessage].filter(Boolean).join(': ');
  const lines = [
    `Name:           ${device.displayName}`,
    `ID:             ${device.deviceId}`,
    `Tenant:         ${device.tenantId}`,
    `State:          ${stateText(device)}${reason ? ` (${reason})` : ''}`,
    `Desired power:  ${enumText(PowerState, device.desiredPowerState)}`,
    `Restart policy: ${enumText(RestartPolicy, device.restartPolicy)}`,
    `Host:           ${device.hostId ? `${hostNames.get(device.hostId) ?? device.hostId} (${device.hostId})` : '-'}`,
    `ADB:            ${device.adbEndpoint || '-'}`,
    `Labels:         ${labelsText(device.labels)}`,
    'Spec:',
    `  image:        ${s?.imageId || '-'}`,
    `  cpu:          ${cpuText(s?.vcpuMillicores)} vCPU`,
    `  memory:       ${memoryText(s?.memoryMib)}`,
    `  storage:      ${s?.storageGib ? `${s.storageGib}Gi` : '-'}`,
    `  screen:       ${screen}`,
    `  gpu:          ${enumText(GpuMode, s?.gpuMode ?? 0)}`,
    `  properties:   ${labelsText(s?.properties)}`,
    `  revision:     ${device.specRevision} (running ${device.observedSpecRevision})`,
    'Placement:',
    `  selector:     ${labelsText(p?.nodeSelector)}`,
    `  arch:         ${p?.arch || 'any'}`,
    `  spread:       ${enumText(SpreadStrategy, p?.spread ?? 0)}`,
    ...(p?.hostId ? [`  pinned to:    ${p.hostId}`] : []),
    'Times:',
    `  created:      ${when(device.createTime, now)}`,
    `  started:      ${when(device.startTime, now)}`,
    `  state since:  ${when(device.stateChangeTime, now)}`,
    `  updated:      ${when(device.updateTime, now)}`,
    ...(device.deleteTime ? [`  deleted:      ${when(device.deleteTime, now)}`] : []),
    `Events (${deviceEvents.length}, newest first):`,
  ];
  ctx.out.write(`${lines.join('\n')}\n`);
  if (deviceEvents.length) {
    ctx.out.write(indent(renderTable({ ...ctx.out, format: 'table' }, eventColumns(now), deviceEvents)));
  }
}

/** Sorts object keys at every depth, so equal requests hash equal whatever order flags came in. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

const BATCH = 100;

interface CreateFlags extends SpecFlags {
  count: number;
  stopped?: boolean;
  requestId?: string;
  dryRun?: boolean;
  wait?: boolean;
  timeout: string;
}

async function createDevices(ctx: Ctx, opts: CreateFlags): Promise<void> {
  const api = await ctx.api();
  const tenantId = await ctx.tenant();
  const base = await deviceRequestFrom(opts);
  if (opts.stopped) base.desiredPowerState = PowerState.STOPPED;
  const requests = Array.from({ length: opts.count }, (_, i) => {
    const r = clone(CreateDeviceRequestSchema, base);
    if (opts.count > 1 && base.displayName) r.displayName = `${base.displayName}-${i + 1}`;
    return r;
  });
  // The same command, run again (after a timeout, a kill, a lost answer), sends the same keys and
  // gets the phones of the first run back instead of new ones.
  const digest = createHash('sha256')
    .update(stableJson([tenantId, toJson(CreateDeviceRequestSchema, base), opts.count]))
    .digest('hex')
    .slice(0, 32);
  const keyOf = (batch: number) =>
    opts.requestId
      ? batch === 0
        ? opts.requestId
        : `${opts.requestId}-${batch}`
      : `cphone-cli-create-${digest}-${batch}`;
  const batches = Math.ceil(requests.length / BATCH);
  const created: Device[] = [];
  for (let b = 0; b < batches; b++) {
    const slice = requests.slice(b * BATCH, (b + 1) * BATCH);
    if (batches > 1)
      ctx.out.note(`batch ${b + 1}/${batches}: ${slice.length} phones (request id ${keyOf(b)})`);
    const res = await api.devices.batchCreateDevices({
      tenantId,
      // A dry run claims no key: the real run after it must not find it taken.
      ...(opts.dryRun ? {} : { requestId: keyOf(b) }),
      requests: slice,
      ...dryRun(opts, BatchCreateDevicesRequestSchema),
    });
    created.push(...res.devices);
  }
  if (opts.dryRun) {
    if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
      printDoc(ctx.out, { dryRun: true, items: created.map((d) => jsonOf(DeviceSchema, d)) });
    } else {
      ctx.out.write(`${opts.count} phone(s) would be created (dry run: nothing was created)\n`);
    }
    return;
  }
  ctx.out.note(
    `${created.length} phone(s) created (request id ${batches > 1 ? `${keyOf(0)} …` : keyOf(0)}: the same command run again returns these, not new ones)`,
  );
  // A replayed request answers with the phones as they were created: show them as they are now.
  let shown = [...(await refreshDevices(ctx, created)).values()].filter((d): d is Device => d !== undefined);
  if (opts.wait) {
    const want = opts.stopped ? DeviceState.STOPPED : DeviceState.RUNNING;
    shown = await waitForDevices(ctx, shown, want, durationMs(opts.timeout, '--timeout'));
  }
  printDevices(ctx, [...shown].sort(byName), await hostNamesFor(ctx), false);
}

interface GetFlags {
  selector?: string[];
  watch?: boolean;
  allTenants?: boolean;
  state?: string[];
  host?: string;
}

export function registerDevices(program: Command): void {
  const devices = program
    .command('devices')
    .alias('device')
    .alias('dev')
    .description('phones: list, inspect, create, start, stop, delete, and work inside them');

  examples(
    devices
      .command('get')
      .alias('list')
      .description('list phones (sorted by name), or show the named ones')
      .argument('[devices...]', 'phone names or ids')
      .option('-l, --selector <k=v>', 'only phones with these labels (repeatable, comma-separated)', collect)
      .option(
        '--state <state>',
        `only phones in this state (repeatable): ${STATE_NAMES.join(', ').toLowerCase()}`,
        collect,
      )
      .option('--host <host>', 'only phones on this host (name or id)')
      .option('-A, --all-tenants', "include the phones of the tenant's customers (descendant tenants)")
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<GetFlags>(async (ctx, [names], opts) => {
          const api = await ctx.api();
          const tenantId = await ctx.tenant();
          const wanted = (names as string[]) ?? [];
          const states = parseStates(opts.state);
          const selector = labelsFrom(opts.selector);
          const hostId = opts.host
            ? opts.host.startsWith('host_')
              ? opts.host
              : (await resolveHost(api, opts.host)).hostId
            : undefined;
          const fetch = async () => {
            if (wanted.length) return Promise.all(wanted.map((n) => resolveDevice(api, n, tenantId)));
            const list = await listDevices(api, {
              tenantId,
              labelSelector: selector,
              includeDescendants: Boolean(opts.allTenants),
              ...(hostId ? { hostId } : {}),
            });
            return list.filter((d) => !states.length || states.includes(d.state)).sort(byName);
          };
          const hostNames = await hostNamesFor(ctx);
          if (opts.watch) {
            await watchList(ctx, fetch, DeviceSchema, deviceColumns(hostNames), (d) => d.deviceId);
            return;
          }
          printDevices(ctx, await fetch(), hostNames, wanted.length === 1);
        }),
      ),
    [
      'cphone devices get',
      'cphone devices get -o wide -l team=qa --state running',
      'cphone devices get "phone 1" -o yaml',
      'cphone devices get --all-tenants --host rack3-node07',
      'cphone devices get -w',
    ],
  );

  examples(
    devices
      .command('describe')
      .description('spec, placement, state and why, host, times, labels and recent events of a phone')
      .argument('<device>', 'phone name or id')
      .action(action(async (ctx, [name]) => describeDevice(ctx, name as string))),
    ['cphone devices describe "phone 1"', 'cphone devices describe dev_0123456789abcdefghij -o json'],
  );

  const create = devices
    .command('create')
    .description('create phones from flags or a spec file (up to 100 per request; more go in batches)');
  for (const [flags, help] of SPEC_OPTIONS) create.option(flags, help);
  create
    .option('--name <name>', 'display name; with --count N the phones are NAME-1 … NAME-N')
    .option('--label <k=v>', 'label (repeatable)', collect)
    .option('--stopped', 'create them stopped (desired power state STOPPED)')
    .option('--count <n>', 'how many identical phones', intOption('--count', 1, 100_000), 1)
    .option(
      '--request-id <key>',
      'idempotency key (default: derived from the command, so running it again creates nothing new)',
    )
    .option('--wait', 'wait until every phone is running (or stopped, with --stopped)')
    .option('--timeout <duration>', 'how long --wait waits, e.g. 90s, 10m', '5m')
    .option('--dry-run', 'check everything (spec, quota, placement), create nothing');
  examples(create.action(action<CreateFlags>(async (ctx, _args, opts) => createDevices(ctx, opts))), [
    'cphone devices create --image virtual-android-12 --name qa --count 3 --label team=qa --wait',
    'cphone devices create -f phone.yaml --cpu 2 --memory 4Gi',
    'cphone devices create --image virtual-android-12 --count 250 --request-id nightly-2024-06-01',
    'cphone devices create --image virtual-android-12 --dry-run',
  ]);

  registerLifecycle(devices);
  registerDeviceActions(devices);
  registerDeviceInput(devices);
}

function registerLifecycle(devices: Command): void {
  const verbs = [
    {
      verb: 'start',
      schema: StartDeviceRequestSchema,
      help: 'start stopped phones',
      done: 'start requested',
      wait: DeviceState.RUNNING,
      // A phone in ERROR is started again on purpose: the agent retries it.
      unchanged: (d: Device) =>
        d.desiredPowerState === PowerState.RUNNING && d.state !== DeviceState.ERROR
          ? 'already set to run'
          : undefined,
      run: (ctx: Ctx, d: Device, opts: LifecycleFlags) =>
        ctx
          .api()
          .then((api) =>
            api.devices.startDevice({ deviceId: d.deviceId, ...dryRun(opts, StartDeviceRequestSchema) }),
          ),
    },
    {
      verb: 'stop',
      schema: StopDeviceRequestSchema,
      help: 'stop phones (their data is kept)',
      done: 'stop requested',
      wait: DeviceState.STOPPED,
      unchanged: (d: Device) =>
        d.desiredPowerState === PowerState.STOPPED ? 'already set to stop' : undefined,
      run: (ctx: Ctx, d: Device, opts: LifecycleFlags) =>
        ctx
          .api()
          .then((api) =>
            api.devices.stopDevice({ deviceId: d.deviceId, ...dryRun(opts, StopDeviceRequestSchema) }),
          ),
    },
    {
      verb: 'reboot',
      schema: RebootDeviceRequestSchema,
      help: 'reboot Android in running phones (--hard restarts the container)',
      done: 'rebooting',
      wait: DeviceState.RUNNING,
      unchanged: () => undefined,
      run: (ctx: Ctx, d: Device, opts: LifecycleFlags) =>
        ctx.api().then((api) => api.devices.rebootDevice({ deviceId: d.deviceId, hard: Boolean(opts.hard) })),
    },
    {
      verb: 'delete',
      schema: DeleteDeviceRequestSchema,
      help: 'delete phones and their data',
      done: 'deletion requested',
      wait: DeviceState.DELETED,
      unchanged: (d: Device) =>
        d.state === DeviceState.DELETING || d.state === DeviceState.DELETED
          ? 'already being deleted'
          : undefined,
      run: (ctx: Ctx, d: Device, opts: LifecycleFlags) =>
        ctx
          .api()
          .then((api) =>
            api.devices.deleteDevice({ deviceId: d.deviceId, ...dryRun(opts, DeleteDeviceRequestSchema) }),
          ),
    },
  ] as const;
  for (const v of verbs) {
    const command = devices
      .command(v.verb)
      .description(v.help)
      .argument('[devices...]', 'phone names or ids')
      .option('-l, --selector <k=v>', 'every phone with these labels (repeatable, comma-separated)', collect)
      .option('-A, --all-tenants', "with --selector, include the tenant's customers' phones")
      .option('--wait', `wait until each is ${enumText(DeviceState, v.wait).toLowerCase()}`)
      .option('--timeout <duration>', 'how long --wait waits', '5m');
    if (v.verb === 'reboot') command.option('--hard', 'restart the container instead of asking Android');
    else command.option('--dry-run', 'check everything, change nothing');
    if (v.verb === 'delete') command.option('--yes', 'confirm: the phones and their data are gone for good');
    examples(
      command.action(
        action<LifecycleFlags>(async (ctx, [names], opts) => {
          if (v.verb === 'delete' && !opts.yes && !opts.dryRun) {
            throw new UsageError('deleting phones cannot be undone: add --yes to go ahead');
          }
          // An unsupported --dry-run is refused before any phone is touched.
          dryRun(opts, v.schema);
          const targets = await selectDevices(ctx, (names as string[]) ?? [], opts);
          const report = await forEachDevice(ctx, targets, v.done, (d) => v.run(ctx, d, opts), {
            dryRun: Boolean(opts.dryRun),
            unchanged: v.unchanged,
          });
          if (opts.wait && !opts.dryRun) {
            const ok = report.items.filter((r) => r.device && !r.error).map((r) => r.device as Device);
            await waitForDevices(ctx, ok, v.wait, durationMs(opts.timeout, '--timeout'));
          }
          report.check();
        }),
      ),
      [
        `cphone devices ${v.verb} "phone 1" "phone 2"${v.verb === 'delete' ? ' --yes' : ''}`,
        `cphone devices ${v.verb} -l team=qa${v.verb === 'delete' ? ' --yes' : ' --wait'}`,
      ],
    );
  }
}

interface LifecycleFlags extends TargetFlags {
  wait?: boolean;
  timeout: string;
  hard?: boolean;
  dryRun?: boolean;
  yes?: boolean;
}
