// Checks of the machine around the agent: settings, disk, clock, ports and the sfu's worker binary.
import { dirname } from 'node:path';
import type { Check, CheckResult, DoctorContext } from './types.js';

const GiB = 1024 ** 3;
const ENV_FILE = '/etc/cphone/agent.env';

export const settingsCheck: Check = async ({ settings }) => {
  const id = 'settings';
  const where = settings.envFile ?? 'the environment';
  if (settings.errors.length === 0) {
    return {
      id,
      status: 'ok',
      detail: `read from ${where}: host ${settings.config.hostId}, control plane ${settings.config.controlPlane}, runtime ${settings.config.runtime}`,
    };
  }
  const names = settings.errors.map((e) => e.variable);
  return {
    id,
    status: 'fail',
    detail: `${settings.errors.map((e) => e.message).join('; ')} (read from ${where}; the other checks use defaults in their place)`,
    fix: `set ${names.join(', ')} in ${settings.envFile ?? ENV_FILE}: CPHONE_HOST_ID and the credential come from \`cphone hosts enroll\` (see host-agent/README.md for every setting)`,
  };
};

/** The data dir, or its nearest existing parent: a fresh host has no data dir until the first start. */
async function nearestExisting(ctx: DoctorContext, path: string): Promise<string> {
  let at = path;
  while (!(await ctx.probes.pathExists(at)) && dirname(at) !== at) at = dirname(at);
  return at;
}

export const diskCheck: Check = async (ctx) => {
  const id = 'disk';
  const dir = ctx.settings.config.dataDir;
  const at = await nearestExisting(ctx, dir);
  const fs = await ctx.probes.statfs(at);
  if (fs === undefined) {
    return {
      id,
      status: 'fail',
      detail: `cannot stat ${at}`,
      fix: `create ${dir} (systemd's StateDirectory does)`,
    };
  }
  const free = fs.freeBytes / GiB;
  const note = at === dir ? '' : ` (${dir} does not exist yet; measured at ${at})`;
  const detail = `${free.toFixed(1)} GiB free of ${(fs.totalBytes / GiB).toFixed(1)} GiB on the data dir${note}`;
  const fix = `free space on the file system of ${dir}, or point CPHONE_AGENT_DATA_DIR at a larger one: the usage spool must never fill up`;
  if (free < 1) return { id, status: 'fail', detail, fix };
  if (free < 5) return { id, status: 'warn', detail, fix };
  return { id, status: 'ok', detail };
};

function timeResult(source: string, synced: boolean, offsetMs: number | undefined): CheckResult {
  const id = 'time-sync';
  const offset = offsetMs === undefined ? '' : `, offset ${offsetMs.toFixed(2)} ms`;
  const fix =
    'keep the clock synchronised (usage samples are aligned to it, certificates checked against it): apt-get install chrony, then `chronyc tracking` should say Leap status Normal';
  if (!synced)
    return { id, status: 'fail', detail: `${source}: the clock is not synchronised${offset}`, fix };
  const abs = Math.abs(offsetMs ?? 0);
  if (abs > 500) return { id, status: 'fail', detail: `${source}: synchronised${offset} (over 500 ms)`, fix };
  if (abs > 50) return { id, status: 'warn', detail: `${source}: synchronised${offset} (over 50 ms)`, fix };
  return { id, status: 'ok', detail: `${source}: synchronised${offset}` };
}

/** chronyc's "System time : 0.000012 seconds fast of NTP time" as ms (fast is positive). */
export function chronyOffsetMs(tracking: string): number | undefined {
  const m = /System time\s*:\s*([\d.]+) seconds (fast|slow)/.exec(tracking);
  return m ? Number(m[1]) * 1000 * (m[2] === 'slow' ? -1 : 1) : undefined;
}

/** systemd-timesyncd's "Offset: +1.234ms" (or us, s) as ms. */
export function timesyncOffsetMs(status: string): number | undefined {
  const m = /Offset:\s*([+-]?[\d.]+)(us|ms|s)\b/.exec(status);
  if (!m) return undefined;
  return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as const)[m[2] as 'us' | 'ms' | 's'];
}

export const timeSyncCheck: Check = async ({ probes }) => {
  const chrony = await probes.command('chronyc', ['-n', 'tracking']);
  if (chrony?.code === 0) {
    const synced = /Leap status\s*:\s*Normal/.test(chrony.stdout);
    return timeResult('chrony', synced, chronyOffsetMs(chrony.stdout));
  }
  const timedatectl = await probes.command('timedatectl', ['show', '-p', 'NTPSynchronized', '--value']);
  if (timedatectl?.code === 0) {
    const status = await probes.command('timedatectl', ['timesync-status']);
    const offset = status?.code === 0 ? timesyncOffsetMs(status.stdout) : undefined;
    return timeResult('timedatectl', timedatectl.stdout.trim() === 'yes', offset);
  }
  // adjtimex(2) as the adjtimex tool prints it: status bit 0x40 is STA_UNSYNC, offset in us.
  const adjtimex = await probes.command('adjtimex', ['--print']);
  if (adjtimex?.code === 0) {
    const status = Number(/status:\s*(\d+)/.exec(adjtimex.stdout)?.[1] ?? 64);
    const offsetUs = /offset:\s*(-?\d+)/.exec(adjtimex.stdout)?.[1];
    return timeResult(
      'adjtimex',
      (status & 0x40) === 0,
      offsetUs === undefined ? undefined : Number(offsetUs) / 1000,
    );
  }
  const tried = [
    chrony ? `chronyc exited ${chrony.code}` : 'no chronyc',
    timedatectl
      ? `timedatectl exited ${timedatectl.code} (${timedatectl.stderr.trim().split('\n')[0]})`
      : 'no timedatectl',
    adjtimex ? `adjtimex exited ${adjtimex.code}` : 'no adjtimex',
  ];
  return {
    id: 'time-sync',
    status: 'fail',
    detail: `no time synchronisation found: ${tried.join(', ')}`,
    fix: 'apt-get install chrony (deploy/host/install.sh does) and systemctl enable --now chrony; `chronyc tracking` then shows the offset',
  };
};

interface PortUse {
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly what: string;
  readonly setting: string;
}

function portsInUse(ctx: DoctorContext): PortUse[] {
  const { config } = ctx.settings;
  const ports: PortUse[] = [];
  if (config.httpPort !== 0) {
    ports.push({
      address: '127.0.0.1',
      port: config.httpPort,
      protocol: 'tcp',
      what: 'health and metrics',
      setting: 'CPHONE_AGENT_HTTP_PORT',
    });
  }
  const s = config.stream;
  if (!s.enabled) return ports;
  if (s.port !== 0) {
    ports.push({
      address: s.bind,
      port: s.port,
      protocol: 'tcp',
      what: 'stream signaling',
      setting: 'CPHONE_STREAM_PORT',
    });
  }
  if (s.rtcPort !== 0) {
    for (let i = 0; i < s.workers; i++) {
      for (const protocol of ['udp', 'tcp'] as const) {
        ports.push({
          address: s.rtcListenIp,
          port: s.rtcPort + i,
          protocol,
          what: `WebRTC of sfu worker ${i}`,
          setting: 'CPHONE_RTC_PORT',
        });
      }
    }
  }
  return ports;
}

export const portsCheck: Check = async (ctx) => {
  const id = 'ports';
  const ports = portsInUse(ctx);
  const list = ports.map((p) => `${p.protocol} ${p.port}`).join(', ');
  if (ctx.settings.config.httpPort !== 0 && (await ctx.probes.agentAnswers(ctx.settings.config.httpPort))) {
    return { id, status: 'ok', detail: `the agent is running and holds its ports (${list})` };
  }
  const taken: string[] = [];
  const settings = new Set<string>();
  for (const p of ports) {
    const error = await ctx.probes.portFree(p.address, p.port, p.protocol);
    if (error !== undefined) {
      taken.push(`${p.protocol} ${p.address}:${p.port} (${p.what}): ${error}`);
      settings.add(p.setting);
    }
  }
  if (taken.length === 0) return { id, status: 'ok', detail: `free: ${list || 'none needed'}` };
  const first = ports.find((p) => settings.has(p.setting));
  return {
    id,
    status: 'fail',
    detail: `in use or not allowed: ${taken.join('; ')}`,
    fix: `stop what holds them (ss -ltnup 'sport = :${first?.port}' names it) or set ${[...settings].join(', ')} to free ports`,
  };
};

export const sfuWorkerCheck: Check = async (ctx) => {
  const id = 'sfu-worker';
  if (!ctx.settings.config.stream.enabled)
    return { id, status: 'ok', detail: 'streams are off (CPHONE_STREAM=off)' };
  const path = ctx.settings.workerBin ?? ctx.workerPath;
  if (await ctx.probes.pathExists(path)) return { id, status: 'ok', detail: `mediasoup worker at ${path}` };
  return {
    id,
    status: 'fail',
    detail: `no mediasoup worker at ${path}: the agent cannot stream phones`,
    fix: "bash scripts/mediasoup-worker.sh in the agent's checkout (builds it from Debian's libraries, no download; deploy/host/install.sh runs it)",
  };
};

const UNIT_FILE = '/etc/systemd/system/cphone-agent.service';

/**
 * The phone firewall (host-agent/src/network): iptables must be installed and usable, and the unit
 * must hand the agent CAP_NET_ADMIN, or the agent stops at start when isolation is on.
 */
export const firewallCheck: Check = async ({ settings, probes }) => {
  const id = 'firewall';
  if (!settings.config.network.enabled) {
    return {
      id,
      status: 'warn',
      detail:
        'CPHONE_NETWORK_ISOLATION=off: phones share networks and reach private addresses; egress is not metered',
      fix: `remove CPHONE_NETWORK_ISOLATION=off from ${settings.envFile ?? ENV_FILE} (isolation is on by default)`,
    };
  }
  const listed = await probes.command('iptables', ['-w', '5', '-S', 'FORWARD']);
  if (listed === undefined) {
    return {
      id,
      status: 'fail',
      detail: 'iptables is not installed: the agent keeps the phones apart with iptables chains',
      fix: 'apt-get install -y iptables',
    };
  }
  if (listed.code !== 0) {
    return {
      id,
      status: 'fail',
      detail: `iptables -S FORWARD exited ${listed.code}: ${listed.stderr.trim() || listed.stdout.trim()}`,
      fix: 'run the doctor as root (sudo cphone-agent doctor); if root fails too, the kernel lacks netfilter (nf_tables) support',
    };
  }
  const unit = await probes.readFile(UNIT_FILE);
  if (unit !== undefined && !/^AmbientCapabilities=.*\bCAP_NET_ADMIN\b/m.test(unit)) {
    return {
      id,
      status: 'fail',
      detail: `${UNIT_FILE} gives the agent no CAP_NET_ADMIN: it cannot install its firewall chains and stops at start`,
      fix: 'install the unit of this release (deploy/host/install.sh), which sets CapabilityBoundingSet= and AmbientCapabilities= to CAP_NET_ADMIN, then systemctl daemon-reload',
    };
  }
  const installed = listed.stdout.includes('-j CPHONE-ISOLATION');
  return {
    id,
    status: 'ok',
    detail: installed
      ? "iptables usable; the agent's chains are in place (FORWARD jumps to CPHONE-ISOLATION)"
      : 'iptables usable; the agent installs its chains when it starts',
  };
};
