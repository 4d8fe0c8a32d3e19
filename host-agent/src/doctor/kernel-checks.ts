// Checks of the kernel Redroid runs on: version, binder, shared memory, cgroups, inotify and the
// sysctl settings a host full of phones needs.
import type { Check } from './types.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;
const INSTALL = 'deploy/host/install.sh';

/**
 * inotify instances and watches a host needs for `phones` Redroid phones. Every phone's processes
 * run as the host's root (privileged containers share the host's user namespace), so one per-user
 * limit covers all phones: Android's init, servicemanager, zygote and the apps each hold instances.
 * deploy/host/install.sh writes at least these (and never less than 8192 / 1048576).
 */
export function inotifyNeeded(phones: number): { instances: number; watches: number } {
  return { instances: 512 + 128 * phones, watches: 65_536 + 16_384 * phones };
}

/** `6.1.0-18-arm64` -> [6, 1]; undefined when it does not start with a version. */
export function kernelVersion(release: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

export const kernelCheck: Check = async ({ probes }) => {
  const release = probes.kernelRelease();
  const v = kernelVersion(release);
  const id = 'kernel';
  if (v === undefined) return { id, status: 'warn', detail: `cannot read a version from ${release}` };
  if (atLeast(v, 5, 0)) return { id, status: 'ok', detail: `Linux ${release} (binderfs needs 5.0 or newer)` };
  const fix =
    'boot a 5.x or newer kernel (Debian 12 ships 6.1): binderfs and memfd-backed Android shared memory need it';
  if (atLeast(v, 4, 14)) {
    return {
      id,
      status: 'warn',
      detail: `Linux ${release}: older than 5.0, so no binderfs; phones would need numbered binder devices`,
      fix,
    };
  }
  return { id, status: 'fail', detail: `Linux ${release} is too old for Redroid`, fix };
};

export const binderCheck: Check = async ({ probes }) => {
  const id = 'binder';
  const filesystems = (await probes.readFile('/proc/filesystems')) ?? '';
  if (/\sbinder$/m.test(filesystems)) {
    return { id, status: 'ok', detail: 'binderfs is available (Redroid mounts its own binder devices)' };
  }
  const release = probes.kernelRelease();
  if (await probes.pathExists('/sys/module/binder_linux')) {
    return {
      id,
      status: 'fail',
      detail:
        'binder_linux is loaded but binderfs is not in /proc/filesystems; the agent passes phones no binder device nodes, so Redroid needs binderfs',
      fix: 'boot a kernel built with CONFIG_ANDROID_BINDERFS=y (or =m, then modprobe binder_linux again)',
    };
  }
  const modinfo = await probes.command('modinfo', ['-n', 'binder_linux']);
  if (modinfo?.code === 0) {
    return {
      id,
      status: 'fail',
      detail: `binder_linux exists for Linux ${release} but is not loaded`,
      fix: `modprobe binder_linux devices=binder,hwbinder,vndbinder; ${INSTALL} makes it load at boot (/etc/modules-load.d/cphone.conf)`,
    };
  }
  return {
    id,
    status: 'fail',
    detail: `no binder in Linux ${release}: binderfs is not in /proc/filesystems and there is no binder_linux module`,
    fix: `boot a kernel built with CONFIG_ANDROID_BINDER_IPC and CONFIG_ANDROID_BINDERFS (built in, or as the binder_linux module), then run ${INSTALL} again`,
  };
};

export const sharedMemoryCheck: Check = async ({ probes }) => {
  const id = 'shared-memory';
  const misc = (await probes.readFile('/proc/misc')) ?? '';
  if (/\sashmem$/m.test(misc) || (await probes.pathExists('/dev/ashmem'))) {
    return { id, status: 'ok', detail: 'ashmem is available (phones boot with memfd all the same)' };
  }
  const v = kernelVersion(probes.kernelRelease());
  if (v === undefined || atLeast(v, 3, 17)) {
    return {
      id,
      status: 'ok',
      detail: 'no ashmem; memfd is used instead (the agent boots phones with androidboot.use_memfd=1)',
    };
  }
  return {
    id,
    status: 'fail',
    detail: 'neither ashmem nor memfd (Linux older than 3.17)',
    fix: 'boot a 5.x or newer kernel',
  };
};

export const cgroupCheck: Check = async ({ probes }) => {
  const id = 'cgroup-v2';
  const fs = await probes.statfs('/sys/fs/cgroup');
  if (fs?.type === CGROUP2_SUPER_MAGIC) {
    return { id, status: 'ok', detail: 'cgroup v2 (unified hierarchy) at /sys/fs/cgroup' };
  }
  const hybrid = await probes.pathExists('/sys/fs/cgroup/unified');
  return {
    id,
    status: 'fail',
    detail: hybrid
      ? 'cgroup hybrid hierarchy: v1 controllers, v2 only at /sys/fs/cgroup/unified; phone limits and the engine stats cphone reads are built for v2, and crun (podman) fails on hybrid hosts'
      : 'cgroup v1 (legacy hierarchy); phone limits and the engine stats cphone reads are built for v2',
    fix: 'boot with the unified hierarchy: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub (and remove any systemd.legacy_systemd_cgroup_controller), run update-grub, reboot',
  };
};

async function sysctl(ctx: Parameters<Check>[0], name: string): Promise<string | undefined> {
  return (await ctx.probes.readFile(`/proc/sys/${name.replaceAll('.', '/')}`))?.trim();
}

export const inotifyCheck: Check = async (ctx) => {
  const id = 'inotify';
  const phones = ctx.settings.config.maxDevices;
  const need = inotifyNeeded(phones);
  const instances = Number(await sysctl(ctx, 'fs.inotify.max_user_instances'));
  const watches = Number(await sysctl(ctx, 'fs.inotify.max_user_watches'));
  const short: string[] = [];
  if (!(instances >= need.instances)) short.push(`fs.inotify.max_user_instances = ${need.instances}`);
  if (!(watches >= need.watches)) short.push(`fs.inotify.max_user_watches = ${need.watches}`);
  const detail = `max_user_instances ${instances}, max_user_watches ${watches}; ${phones} phones (CPHONE_MAX_DEVICES) need ${need.instances} and ${need.watches}`;
  if (short.length === 0) return { id, status: 'ok', detail };
  return {
    id,
    status: 'fail',
    detail,
    fix: `put ${short.join(' and ')} in /etc/sysctl.d/60-cphone.conf and run sysctl --system (${INSTALL} writes it, sized from CPHONE_MAX_DEVICES)`,
  };
};

/** ip_local_reserved_ports: "40000-40003,50000". */
function parseRanges(text: string): Array<[number, number]> {
  return text
    .split(',')
    .filter(Boolean)
    .map((part) => {
      const [a, b] = part.trim().split('-').map(Number);
      return [a ?? 0, b ?? a ?? 0] as [number, number];
    });
}

/** Limits a host with many phones runs into after inotify; each short one is a warning. */
export const kernelSettingsCheck: Check = async (ctx) => {
  const id = 'kernel-settings';
  const wanted: Array<[string, number, string]> = [
    ['kernel.pid_max', 4_194_304, 'every phone runs a few hundred processes and threads'],
    ['vm.max_map_count', 262_144, "Android's runtime maps many regions per app"],
    ['net.core.wmem_max', 4_194_304, 'each sfu worker asks for 4 MiB socket buffers'],
    ['net.core.rmem_max', 4_194_304, 'each sfu worker asks for 4 MiB socket buffers'],
  ];
  const short: string[] = [];
  const why: string[] = [];
  for (const [name, min, reason] of wanted) {
    const value = Number(await sysctl(ctx, name));
    if (!(value >= min)) {
      short.push(`${name} = ${min}`);
      why.push(`${name} is ${Number.isNaN(value) ? 'unreadable' : value} (${reason})`);
    }
  }
  const stream = ctx.settings.config.stream;
  if (stream.enabled && stream.rtcPort !== 0) {
    const first = stream.rtcPort;
    const last = stream.rtcPort + stream.workers - 1;
    // "32768\t60999": the first and last ephemeral port.
    const [lo = 0, hi = -1] = ((await sysctl(ctx, 'net.ipv4.ip_local_port_range')) ?? '')
      .split(/\s+/)
      .map(Number);
    const reserved = parseRanges((await sysctl(ctx, 'net.ipv4.ip_local_reserved_ports')) ?? '');
    const overlaps = first <= hi && last >= lo;
    const covered = reserved.some(([a, b]) => a <= first && b >= last);
    if (overlaps && !covered) {
      short.push(`net.ipv4.ip_local_reserved_ports = ${first}-${last}`);
      why.push(
        `the WebRTC ports ${first}-${last} lie in the ephemeral range ${lo}-${hi}, where outgoing connections may take them`,
      );
    }
  }
  if (short.length === 0)
    return { id, status: 'ok', detail: 'pid_max, max_map_count, socket buffers and reserved ports suffice' };
  return {
    id,
    status: 'warn',
    detail: why.join('; '),
    fix: `put ${short.join(', ')} in /etc/sysctl.d/60-cphone.conf and run sysctl --system (${INSTALL} does)`,
  };
};
