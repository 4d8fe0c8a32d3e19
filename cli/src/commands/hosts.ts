// cphone hosts: the servers phones run on. get, describe, enroll, cordon, uncordon, drain, revoke,
// delete, explain.
import { timestampMs } from '@bufbuild/protobuf/wkt';
import {
  CordonHostRequestSchema,
  DeviceState as DEVICE_STATES,
  DrainHostRequestSchema,
  DrainMode,
  DrainState,
  type DrainStatus,
  EnrollHostRequestSchema,
  type Host,
  type HostResources,
  HostSchema,
  HostState,
  UncordonHostRequestSchema,
} from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import {
  action,
  type Ctx,
  collect,
  dryRun,
  examples,
  interrupted,
  protoDuration,
  requireYes,
  sleep,
} from '../lib/command.js';
import { CliError, EXIT } from '../lib/errors.js';
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
import { createProgress } from '../lib/progress.js';
import { listDevices, listHosts, resolveHost } from '../lib/resolve.js';
import { deviceRequestFrom, SPEC_OPTIONS, type SpecFlags } from '../lib/spec.js';
import { watchList } from '../lib/watch.js';

const GiB = 1024 ** 3;

function stateText(h: Host): string {
  const s = enumText(HostState, h.state);
  const extra = [
    h.cordoned && h.state !== HostState.CORDONED ? 'SchedulingDisabled' : '',
    h.connected ? '' : 'Disconnected',
  ]
    .filter(Boolean)
    .join(',');
  return extra ? `${s},${extra}` : s;
}

function tintState(text: string, h: Host, paint: Ctx['out']['paint']): string {
  if (h.state === HostState.READY && h.connected) return paint.green(text);
  if (h.state === HostState.UNREACHABLE || h.state === HostState.REVOKED) return paint.red(text);
  return paint.yellow(text);
}

function ratio(used: bigint | number | undefined, total: bigint | number | undefined): string {
  const t = Number(total ?? 0);
  return t > 0 ? `${Math.round((Number(used ?? 0) / t) * 100)}%` : '-';
}

export const HOST_COLUMNS: Column<Host>[] = [
  { header: 'NAME', cell: (h) => h.name },
  { header: 'STATE', cell: stateText, tint: tintState },
  { header: 'PHONES', cell: (h) => `${h.allocated?.devices ?? 0}/${h.allocatable?.devices ?? 0}` },
  { header: 'CPU', cell: (h) => ratio(h.allocated?.vcpuMillicores, h.allocatable?.vcpuMillicores) },
  { header: 'MEMORY', cell: (h) => ratio(h.allocated?.memoryBytes, h.allocatable?.memoryBytes) },
  { header: 'ARCH', cell: (h) => h.arch || '-' },
  { header: 'HEARTBEAT', cell: (h) => age(h.lastHeartbeatTime) },
  { header: 'AGE', cell: (h) => age(h.createTime) },
  { header: 'ID', cell: (h) => h.hostId, wide: true },
  { header: 'VERSION', cell: (h) => h.agentVersion || '-', wide: true },
  { header: 'RUNTIME', cell: (h) => h.runtimeKind || '-', wide: true },
  { header: 'LABELS', cell: (h) => labelsText(h.labels), wide: true },
];

const byName = (a: Host, b: Host) => a.name.localeCompare(b.name);

function printHosts(ctx: Ctx, hosts: Host[], single: boolean): void {
  printResources(ctx.out, HostSchema, hosts, HOST_COLUMNS, { single, name: (h) => h.name });
}

function resources(r: HostResources | undefined): string {
  if (!r) return '-';
  return `${r.devices} phones, ${(Number(r.vcpuMillicores) / 1000).toFixed(1)} vCPU, ${(Number(r.memoryBytes) / GiB).toFixed(1)} GiB memory, ${(Number(r.storageBytes) / GiB).toFixed(0)} GiB storage`;
}

function conditions(h: Host, now: number): [string, string, string][] {
  const beat = h.lastHeartbeatTime ? now - timestampMs(h.lastHeartbeatTime) : undefined;
  return [
    ['Connected', h.connected ? 'True' : 'False', h.connected ? 'agent stream open' : 'no agent stream'],
    ['Ready', h.state === HostState.READY ? 'True' : 'False', enumText(HostState, h.state)],
    ['Schedulable', h.cordoned ? 'False' : 'True', h.cordoned ? 'cordoned' : 'takes new phones'],
    [
      'Heartbeat',
      beat !== undefined && beat < 30_000 ? 'True' : 'False',
      beat === undefined ? 'never' : `${age(h.lastHeartbeatTime, now)} ago`,
    ],
    ...(h.drain && h.drain.state !== DrainState.UNSPECIFIED
      ? [['Drain', enumText(DrainState, h.drain.state), drainLine(h.drain)] as [string, string, string]]
      : []),
  ];
}

function drainLine(d: DrainStatus): string {
  return `${enumText(DrainMode, d.mode)}: ${d.devicesMigrated} migrated, ${d.devicesFailed} failed, ${d.devicesRemaining} remaining of ${d.devicesTotal}`;
}

async function describeHost(ctx: Ctx, nameOrId: string): Promise<void> {
  const api = await ctx.api();
  const host = await resolveHost(api, nameOrId);
  const phones = await listDevices(api, { hostId: host.hostId, includeDescendants: true }).catch(() => []);
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
    printHosts(ctx, [host], true);
    return;
  }
  const now = Date.now();
  const load = host.load;
  const lines = [
    `Name:           ${host.name}`,
    `ID:             ${host.hostId}`,
    `State:          ${stateText(host)}`,
    `Hostname:       ${host.hostname || '-'}`,
    `Arch:           ${host.arch || '-'}`,
    `Runtime:        ${host.runtimeKind || '-'}`,
    `Agent version:  ${host.agentVersion || '-'} (protocol ${host.protocolVersion})`,
    `Heartbeat:      ${host.lastHeartbeatTime ? `${age(host.lastHeartbeatTime, now)} ago` : 'never'}`,
    `Labels:         ${labelsText(host.labels)}`,
    `Created:        ${age(host.createTime, now)} ago`,
    'Capacity:',
    `  capacity:     ${resources(host.capacity)}`,
    `  allocatable:  ${resources(host.allocatable)}`,
    `  allocated:    ${resources(host.allocated)}`,
    `  overcommit:   cpu ${host.overcommit?.cpu ?? 1}x, memory ${host.overcommit?.memory ?? 1}x`,
    ...(load
      ? [
          'Load:',
          `  cpu ${load.cpuPercent.toFixed(0)}%, load ${load.loadAverage1m.toFixed(2)}, memory ${ratio(load.memoryUsedBytes, load.memoryTotalBytes)}, disk ${ratio(load.diskUsedBytes, load.diskTotalBytes)}, ${load.runningDevices} phones running`,
        ]
      : []),
    'Conditions:',
  ];
  ctx.out.write(`${lines.join('\n')}\n`);
  const table = renderTable(
    { ...ctx.out, format: 'table' },
    [
      { header: 'TYPE', cell: (c: [string, string, string]) => c[0] },
      { header: 'STATUS', cell: (c) => c[1] },
      { header: 'MESSAGE', cell: (c) => c[2] },
    ],
    conditions(host, now),
  );
  ctx.out.write(indent(table));
  ctx.out.write(`Phones (${phones.length}):\n`);
  if (phones.length) {
    ctx.out.write(
      indent(
        renderTable(
          { ...ctx.out, format: 'table' },
          [
            { header: 'NAME', cell: (d) => d.displayName },
            { header: 'ID', cell: (d) => d.deviceId },
            { header: 'STATE', cell: (d) => enumText(DEVICE_STATES, d.state) },
            { header: 'TENANT', cell: (d) => d.tenantId },
          ],
          phones,
        ),
      ),
    );
  }
  if (host.drain?.failures.length) {
    ctx.out.write('Drain failures:\n');
    for (const f of host.drain.failures) ctx.out.write(`  ${f.deviceId}: ${f.reason}\n`);
  }
}

/**
 * Follows a drain until it ends, drawing migrated / failed / remaining. Ctrl-C stops following, not
 * the drain: it runs on the control plane, and `drain --status` picks it up again.
 */
async function followDrain(ctx: Ctx, host: Host, first: DrainStatus | undefined): Promise<void> {
  const api = await ctx.api();
  let status = first;
  const total = () => Math.max(status?.devicesTotal ?? 0, 1);
  const done = () => (status ? status.devicesTotal - status.devicesRemaining : 0);
  const payload = () => ({
    migrated: status?.devicesMigrated ?? 0,
    failed: status?.devicesFailed ?? 0,
    remaining: status?.devicesRemaining ?? 0,
  });
  const bar = createProgress({
    total: total(),
    format: `draining ${host.name} {bar} {value}/{total} | migrated {migrated} | failed {failed} | remaining {remaining}`,
    quiet: ctx.out.quiet,
    payload: payload(),
  });
  const stop = interrupted();
  try {
    while (status?.state === DrainState.IN_PROGRESS) {
      bar.setTotal(total());
      bar.update(done(), payload());
      const signal = await Promise.race([sleep(500).then(() => undefined), stop.promise]);
      if (signal) {
        bar.stop();
        ctx.out.note(
          `\nstopped following; the drain goes on. See it with: cphone hosts drain ${host.name} --status`,
        );
        throw new CliError('interrupted', EXIT.interrupted);
      }
      status = (await api.hosts.getDrainStatus({ hostId: host.hostId })).drainStatus;
    }
  } finally {
    stop.dispose();
  }
  bar.setTotal(total());
  bar.update(done(), payload());
  const state = status ? enumText(DrainState, status.state) : 'unknown';
  bar.stop(`drain of ${host.name} ${state.toLowerCase()}: ${status ? drainLine(status) : ''}`);
  printDrainResult(ctx, status);
}

function printDrainResult(ctx: Ctx, status: DrainStatus | undefined): void {
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
    printDoc(ctx.out, status ? drainJson(status) : null);
  }
  for (const f of status?.failures ?? []) ctx.out.note(`  failed: ${f.deviceId}: ${f.reason}`);
  if (status?.state === DrainState.FAILED) {
    throw new CliError(`the drain failed: ${status.devicesFailed} phones could not be moved`, EXIT.failure);
  }
}

function drainJson(s: DrainStatus) {
  return {
    mode: DrainMode[s.mode],
    state: DrainState[s.state],
    reason: s.reason,
    devicesTotal: s.devicesTotal,
    devicesMigrated: s.devicesMigrated,
    devicesFailed: s.devicesFailed,
    devicesRemaining: s.devicesRemaining,
    failures: s.failures.map((f) => ({ deviceId: f.deviceId, reason: f.reason })),
  };
}

export function registerHosts(program: Command): void {
  const hosts = program
    .command('hosts')
    .alias('host')
    .description('servers that run phones: list, inspect, enroll, cordon, drain, retire');

  examples(
    hosts
      .command('get')
      .alias('list')
      .description('list hosts, or show the named ones')
      .argument('[hosts...]', 'host names or ids')
      .option('-l, --selector <k=v>', 'only hosts with these labels (repeatable, comma-separated)', collect)
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<{ selector?: string[]; watch?: boolean }>(async (ctx, [names], opts) => {
          const api = await ctx.api();
          const wanted = (names as string[]) ?? [];
          const fetch = async () => {
            if (wanted.length) return Promise.all(wanted.map((n) => resolveHost(api, n)));
            return (await listHosts(api, { labelSelector: labelsFrom(opts.selector) })).sort(byName);
          };
          if (opts.watch) {
            await watchList(ctx, fetch, HostSchema, HOST_COLUMNS, (h) => h.hostId);
            return;
          }
          printHosts(ctx, await fetch(), wanted.length === 1);
        }),
      ),
    [
      'cphone hosts get',
      'cphone hosts get -o wide -l zone=eu-1',
      'cphone hosts get rack3-node07 -o yaml',
      'cphone hosts get -w',
    ],
  );

  examples(
    hosts
      .command('describe')
      .description('capacity, allocation, phones, agent version, heartbeat, labels and conditions of a host')
      .argument('<host>', 'host name or id')
      .action(action(async (ctx, [name]) => describeHost(ctx, name as string))),
    ['cphone hosts describe rack3-node07'],
  );

  examples(
    hosts
      .command('enroll')
      .description("register a new server: prints its one-time credential and the agent's start line")
      .argument('<name>', 'unique host name, e.g. rack3-node07')
      .option('--label <k=v>', 'host label (repeatable)', collect)
      .option('--arch <arch>', 'CPU architecture (the agent reports the real one)', 'arm64')
      .option('--overcommit-cpu <ratio>', 'vCPU overcommit ratio', parseFloat)
      .option('--overcommit-memory <ratio>', 'memory overcommit ratio', parseFloat)
      .option('--request-id <key>', 'idempotency key (default: derived from the name)')
      .option('--dry-run', 'check everything, create nothing')
      .action(
        action<{
          label?: string[];
          arch: string;
          overcommitCpu?: number;
          overcommitMemory?: number;
          requestId?: string;
          dryRun?: boolean;
        }>(async (ctx, [name], opts) => {
          const api = await ctx.api();
          const res = await api.hosts.enrollHost({
            name: name as string,
            requestId: opts.requestId ?? `cphone-cli-enroll-${name}`,
            labels: labelsFrom(opts.label, '--label'),
            arch: opts.arch,
            ...dryRun(opts, EnrollHostRequestSchema),
            ...(opts.overcommitCpu || opts.overcommitMemory
              ? { overcommit: { cpu: opts.overcommitCpu ?? 1, memory: opts.overcommitMemory ?? 1 } }
              : {}),
          });
          const host = res.host;
          if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
            printDoc(ctx.out, { host: host ? jsonOf(HostSchema, host) : null, credential: res.credential });
            return;
          }
          if (opts.dryRun) {
            ctx.out.write(`host ${name} would be enrolled (dry run: nothing was created)\n`);
            return;
          }
          ctx.out.write(
            [
              `host ${host?.name} enrolled as ${host?.hostId} (state ${enumText(HostState, host?.state ?? 0)})`,
              '',
              res.credential
                ? `credential (shown once, keep it secret): ${res.credential}`
                : 'no new credential: this host was enrolled before with this request id and its agent has connected',
              '',
              'On the server (deploy/host/install.sh puts the unit and /etc/cphone/agent.env in place):',
              `  printf '%s\\n' '${res.credential || '<credential>'}' | sudo install -m 600 -o cphone-agent -g cphone-agent /dev/stdin /etc/cphone/agent.credential`,
              `  sudo sed -i 's/^CPHONE_HOST_ID=.*/CPHONE_HOST_ID=${host?.hostId}/' /etc/cphone/agent.env`,
              '  sudo cphone-agent doctor',
              '  sudo systemctl enable --now cphone-agent.service',
              '',
            ].join('\n'),
          );
        }),
      ),
    [
      'cphone hosts enroll rack3-node07 --label zone=eu-1 --label rack=3',
      'cphone hosts enroll rack3-node08 --dry-run',
    ],
  );

  for (const [verb, help] of [
    ['cordon', 'stop placing new phones on hosts (running phones stay)'],
    ['uncordon', 'let hosts take new phones again'],
  ] as const) {
    const command = hosts.command(verb);
    // Only cordon has a reason and a dry run (UncordonHost takes neither).
    if (verb === 'cordon') {
      command.option('--reason <text>', 'why (kept in the audit log)', '');
      command.option('--dry-run', 'check everything, change nothing');
    }
    examples(
      command
        .description(help)
        .argument('<hosts...>', 'host names or ids')
        .action(
          action<{ reason?: string; dryRun?: boolean }>(async (ctx, [names], opts) => {
            const api = await ctx.api();
            for (const n of names as string[]) {
              const host = await resolveHost(api, n);
              const res =
                verb === 'cordon'
                  ? await api.hosts.cordonHost({
                      hostId: host.hostId,
                      reason: opts.reason ?? '',
                      ...dryRun(opts, CordonHostRequestSchema),
                    })
                  : await api.hosts.uncordonHost({
                      hostId: host.hostId,
                      ...dryRun(opts, UncordonHostRequestSchema),
                    });
              const after = res.host ?? host;
              if (ctx.out.format === 'json' || ctx.out.format === 'yaml') printHosts(ctx, [after], true);
              else ctx.out.write(`host/${after.name} ${verb}ed${opts.dryRun ? ' (dry run)' : ''}\n`);
            }
          }),
        ),
      [`cphone hosts ${verb} rack3-node07${verb === 'cordon' ? ' --reason "disk swap"' : ''}`],
    );
  }

  examples(
    hosts
      .command('drain')
      .description(
        'move or stop every phone on a host, with live progress (Ctrl-C stops watching, not the drain)',
      )
      .argument('<host>', 'host name or id')
      .addOption(
        new Option('--mode <mode>', 'stop phones in place, or migrate them to other hosts')
          .choices(['stop', 'migrate'])
          .default('migrate'),
      )
      .option('--reason <text>', 'why (audit log, sent to the agent)', '')
      .option('--timeout <duration>', 'after this, stop what is left (e.g. 30m, 2h)')
      .option('--status', "show the host's current or last drain (and follow it while it runs)")
      .option('--detach', 'start the drain and return at once')
      .option('--dry-run', 'check the drain could start, change nothing')
      .action(
        action<{
          mode: string;
          reason: string;
          timeout?: string;
          status?: boolean;
          detach?: boolean;
          dryRun?: boolean;
        }>(async (ctx, [name], opts) => {
          const api = await ctx.api();
          const host = await resolveHost(api, name as string);
          if (opts.status) {
            const { drainStatus } = await api.hosts.getDrainStatus({ hostId: host.hostId });
            if (!drainStatus)
              throw new CliError(`NOT_FOUND: host ${host.name} was never drained`, EXIT.notFound);
            if (drainStatus.state === DrainState.IN_PROGRESS && !opts.detach) {
              await followDrain(ctx, host, drainStatus);
            } else if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
              printDoc(ctx.out, drainJson(drainStatus));
            } else {
              ctx.out.write(
                `drain of ${host.name} ${enumText(DrainState, drainStatus.state).toLowerCase()}: ${drainLine(drainStatus)}\n`,
              );
              for (const f of drainStatus.failures) ctx.out.write(`  failed: ${f.deviceId}: ${f.reason}\n`);
            }
            return;
          }
          const res = await api.hosts.drainHost({
            hostId: host.hostId,
            mode: opts.mode === 'stop' ? DrainMode.STOP : DrainMode.MIGRATE,
            reason: opts.reason,
            ...dryRun(opts, DrainHostRequestSchema),
            ...(opts.timeout ? { timeout: protoDuration(opts.timeout, '--timeout') } : {}),
          });
          if (opts.dryRun) {
            ctx.out.write(
              `host/${host.name} can be drained (dry run: ${res.drainStatus?.devicesTotal ?? 0} phones would ${opts.mode === 'stop' ? 'stop' : 'move'})\n`,
            );
            return;
          }
          if (opts.detach) {
            ctx.out.write(
              `host/${host.name} draining (${opts.mode}); follow it with: cphone hosts drain ${host.name} --status\n`,
            );
            return;
          }
          await followDrain(ctx, host, res.drainStatus);
        }),
      ),
    [
      'cphone hosts drain rack3-node07 --mode migrate --reason "kernel update"',
      'cphone hosts drain rack3-node07 --mode stop --timeout 30m --detach',
      'cphone hosts drain rack3-node07 --status',
    ],
  );

  examples(
    hosts
      .command('revoke')
      .description("revoke a host's credential (its agent is cut off), or rotate it with --rotate")
      .argument('<host>', 'host name or id')
      .option('--rotate', 'issue a new credential at once (printed once)')
      .option('--yes', 'confirm: the agent loses its access')
      .action(
        action<{ rotate?: boolean; yes?: boolean }>(async (ctx, [name], opts) => {
          requireYes(opts, `revoking the credential of host ${name}`);
          const api = await ctx.api();
          const host = await resolveHost(api, name as string);
          const res = await api.hosts.revokeHostCredential({
            hostId: host.hostId,
            issueNew: Boolean(opts.rotate),
          });
          if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
            printDoc(ctx.out, {
              host: res.host ? jsonOf(HostSchema, res.host) : null,
              credential: res.credential,
            });
            return;
          }
          ctx.out.write(`host/${host.name} credential revoked\n`);
          if (res.credential) ctx.out.write(`new credential (shown once): ${res.credential}\n`);
        }),
      ),
    ['cphone hosts revoke rack3-node07 --yes', 'cphone hosts revoke rack3-node07 --rotate --yes'],
  );

  examples(
    hosts
      .command('delete')
      .description('remove hosts (drain them first; --force moves their phones as LOST)')
      .argument('<hosts...>', 'host names or ids')
      .option(
        '--force',
        'delete even with phones placed (they are placed again elsewhere, without their data)',
      )
      .option('--yes', 'confirm the deletion')
      .action(
        action<{ force?: boolean; yes?: boolean }>(async (ctx, [names], opts) => {
          requireYes(opts, `deleting ${(names as string[]).join(', ')}`);
          const api = await ctx.api();
          for (const n of names as string[]) {
            const host = await resolveHost(api, n);
            await api.hosts.deleteHost({ hostId: host.hostId, force: Boolean(opts.force) });
            ctx.out.write(`host/${host.name} deleted\n`);
          }
        }),
      ),
    ['cphone hosts delete rack3-node07 --yes'],
  );

  const explain = hosts
    .command('explain')
    .description('why a phone spec fits or not, host by host (filters that fail, scores)')
    .option('--count <n>', 'how many identical phones to place', (v) => Number.parseInt(v, 10), 1);
  for (const [flags, help] of SPEC_OPTIONS) explain.option(flags, help);
  examples(
    explain.action(
      action<SpecFlags & { count: number }>(async (ctx, _args, opts) => {
        const api = await ctx.api();
        const request = await deviceRequestFrom(opts);
        const res = await api.hosts.explainPlacement({
          tenantId: await ctx.tenant(),
          ...(request.spec ? { spec: request.spec } : {}),
          ...(request.placement ? { placement: request.placement } : {}),
          count: opts.count,
        });
        if (ctx.out.format === 'json' || ctx.out.format === 'yaml') {
          printDoc(ctx.out, {
            feasible: res.feasible,
            message: res.message,
            chosenHostIds: res.chosenHostIds,
            hosts: res.hosts.map((h) => ({
              hostId: h.hostId,
              hostName: h.hostName,
              feasible: h.feasible,
              finalScore: h.finalScore,
              filterFailures: h.filterFailures.map((f) => ({ filter: f.filter, message: f.message })),
            })),
          });
          return;
        }
        ctx.out.write(
          renderTable(
            ctx.out,
            [
              { header: 'HOST', cell: (h) => h.hostName || h.hostId },
              {
                header: 'FITS',
                cell: (h) => (h.feasible ? 'yes' : 'no'),
                tint: (t, h, p) => (h.feasible ? p.green(t) : p.red(t)),
              },
              { header: 'SCORE', cell: (h) => (h.feasible ? h.finalScore.toFixed(2) : '-') },
              {
                header: 'WHY NOT',
                cell: (h) => h.filterFailures.map((f) => `${f.filter}: ${f.message}`).join('; ') || '-',
              },
            ],
            res.hosts,
          ),
        );
        const chosen = res.chosenHostIds
          .map((id) => res.hosts.find((h) => h.hostId === id)?.hostName ?? id)
          .join(', ');
        if (!res.feasible)
          throw new CliError(`RESOURCE_EXHAUSTED: does not fit: ${res.message}`, EXIT.resourceExhausted);
        ctx.out.write(`fits: ${opts.count} on ${chosen}\n`);
      }),
    ),
    [
      'cphone hosts explain --image virtual-android-12 --cpu 2 --memory 4Gi',
      'cphone hosts explain -f phone.yaml --count 20',
    ],
  );
}
