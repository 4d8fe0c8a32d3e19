// Drill (c): a rolling upgrade of the agents under a control plane one release ahead.
//
//   npx tsx deploy/drills/upgrade.ts [--mode=lean|full] [--from=<tag or commit>]
//     (default: the newest vX.Y.Z tag below this version, else the last commit of the previous
//     version in host-agent/package.json's history: a clone of main alone carries no tags)
//
// The previous release's agent is taken from git (`git archive <revision>` into a temporary folder) and
// run from its own source with tsx, as a process per host. Its third-party dependencies are this
// checkout's node_modules when the two lockfiles pin the same packages (a folder of symlinks, with
// @cphone/* pointing at the old tree's own workspaces), else `npm ci` in the old tree. The control
// plane is this checkout's (in this process, on a PostgreSQL server of the drill's own). Phones
// run as containers of podman's Docker API (the stand-in image with Redroid's create call), so
// they outlive the agent processes as Redroid containers do.
//
// The old agents connect (their Hello's agent_version is the old release, inside the control
// plane's supported range), phones are created and run through them, and a shell command runs on
// each through the API. Then each agent in turn is stopped (SIGTERM) and started from this
// checkout. Figures: per-agent downtime (stop -> the host connected again with the new release),
// phones restarted (a container whose id or start time changed, or that is gone: must be 0),
// phones not RUNNING after the upgrade (must be 0), and the shell command working on every phone
// through the new agents.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LABEL_DEVICE_ID, LABEL_SCOPE } from '@cphone/host-agent';
import { bundleStandinPhone, connectEngine, removeScope } from '@cphone/host-agent/testing';
import { DeviceService, DeviceState, HostService } from '@cphone/proto';
import { type Mode, modeFromArgs, pool, progress, runAsCommand } from './lib/drill.js';
import { createPhone, type Fleet, startFleet } from './lib/plane.js';
import { drillDir, PgServer, until } from './lib/postgres.js';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface UpgradeOptions {
  mode?: Mode;
  /** The release the agents start on (a git tag or commit). Default: see {@link previousRelease}. */
  from?: string;
}

export interface UpgradeSummary {
  drill: 'upgrade';
  mode: Mode;
  passed: boolean;
  failures: string[];
  figures: {
    fromVersion: string;
    /** The commit the previous release's agent was built from. */
    fromCommit: string;
    toVersion: string;
    /** How the old tree got its dependencies. */
    dependencies: 'linked (lockfiles pin the same packages)' | 'npm ci';
    agents: number;
    phones: number;
    /** Per agent: stop -> connected again with the new release. */
    downtimeMs: number[];
    /** Per agent, the parts of the downtime: SIGTERM -> exit, spawn -> started (module load), -> connected. */
    stopMs: number[];
    startMs: number[];
    connectMs: number[];
    phonesRestarted: number;
    phonesNotRunning: number;
    shellAfterUpgradeOk: number;
    hostVersionsAfter: string[];
    createdAfterUpgradeRunning: boolean;
  };
}

const SIZES = {
  lean: { hosts: 2, phonesPerHost: 1 },
  full: { hosts: 3, phonesPerHost: 4 },
} as const;

/** The third-party packages a lockfile pins (workspace entries left out). */
function pinned(lock: string): string {
  const packages = (
    JSON.parse(lock) as {
      packages: Record<string, { version?: string; resolved?: string; integrity?: string }>;
    }
  ).packages;
  const out: Record<string, unknown> = {};
  for (const [path, entry] of Object.entries(packages)) {
    if (!path.startsWith('node_modules/') || path.startsWith('node_modules/@cphone/')) continue;
    out[path] = [entry.version, entry.integrity];
  }
  return JSON.stringify(out);
}

/** Orders `X.Y.Z` versions. */
function compareVersions(a: string, b: string): number {
  const [pa, pb] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * The previous release as a git revision: the newest `vX.Y.Z` tag below `current` when the clone
 * has tags, else the commit before the one that set this version in `host-agent/package.json`
 * (the release's last commit; a clone of the branch alone carries no tags, but it carries that).
 */
export async function previousRelease(current: string): Promise<string> {
  const { stdout: tags } = await run('git', ['-C', repoRoot, 'tag', '--list', 'v*']);
  const below = tags
    .split('\n')
    .filter((t) => /^v\d+\.\d+\.\d+$/.test(t) && compareVersions(t.slice(1), current) < 0)
    .sort((a, b) => compareVersions(b.slice(1), a.slice(1)));
  if (below[0] !== undefined) return below[0];
  const { stdout: commits } = await run('git', [
    '-C',
    repoRoot,
    'log',
    '--first-parent',
    '--format=%H',
    '--',
    'host-agent/package.json',
  ]);
  let bump: string | undefined;
  for (const commit of commits.split('\n').filter(Boolean)) {
    const version = await versionAt(commit);
    if (version !== undefined && compareVersions(version, current) < 0) {
      if (bump === undefined) break;
      return `${bump}^1`;
    }
    bump = commit;
  }
  throw new Error(
    `no release below ${current} in this clone: no vX.Y.Z tag and no earlier version in the history of host-agent/package.json (a shallow clone needs \`git fetch --unshallow\`)`,
  );
}

/** `host-agent/package.json`'s version at `revision`, if the file is there. */
async function versionAt(revision: string): Promise<string | undefined> {
  const shown = await run('git', ['-C', repoRoot, 'show', `${revision}:host-agent/package.json`]).catch(
    () => undefined,
  );
  return shown === undefined ? undefined : (JSON.parse(shown.stdout) as { version: string }).version;
}

/** Extracts `revision` into a fresh folder and gives it dependencies; returns the folder and how. */
async function extractRelease(revision: string): Promise<{
  tree: string;
  commit: string;
  version: string;
  dependencies: UpgradeSummary['figures']['dependencies'];
}> {
  const commit = (
    await run('git', ['-C', repoRoot, 'rev-parse', '--verify', '--quiet', `${revision}^{commit}`]).catch(
      () => {
        throw new Error(`--from=${revision}: no such tag or commit in this clone`);
      },
    )
  ).stdout.trim();
  const tree = await mkdtemp(join(tmpdir(), 'cphone-drill-release-'));
  await run('bash', ['-c', `git -C "$0" archive "$1" | tar -x -C "$2"`, repoRoot, revision, tree]);
  const version = (
    JSON.parse(await readFile(join(tree, 'host-agent/package.json'), 'utf8')) as { version: string }
  ).version;
  const same =
    pinned(await readFile(join(tree, 'package-lock.json'), 'utf8')) ===
    pinned(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
  if (!same) {
    await run('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'], {
      cwd: tree,
      timeout: 600_000,
    });
    return { tree, commit, version, dependencies: 'npm ci' };
  }
  const modules = join(tree, 'node_modules');
  await mkdir(join(modules, '@cphone'), { recursive: true });
  for (const name of await readdir(join(repoRoot, 'node_modules'))) {
    if (name === '@cphone' || name === '.bin' || name === '.cache' || name === '.package-lock.json') continue;
    await symlink(join(repoRoot, 'node_modules', name), join(modules, name));
  }
  // The old tree's own workspaces, by the names their package.json give.
  const lock = JSON.parse(await readFile(join(tree, 'package.json'), 'utf8')) as { workspaces: string[] };
  for (const ws of lock.workspaces) {
    const { name } = JSON.parse(await readFile(join(tree, ws, 'package.json'), 'utf8')) as { name: string };
    await symlink(relative(dirname(join(modules, name)), join(tree, ws)), join(modules, name));
  }
  return { tree, commit, version, dependencies: 'linked (lockfiles pin the same packages)' };
}

interface AgentProcess {
  child: ChildProcess;
  version: string;
  exited: Promise<number | null>;
}

function startAgentProcess(tree: string, env: Record<string, string>): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'deploy/drills/agent-process.ts')],
    {
      cwd: tree,
      env: { ...process.env, ...env, DRILL_AGENT_TREE: tree },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)\n/.exec(out);
      if (m) resolve({ child, version: m[1] as string, exited });
    });
    void exited.then((code) =>
      reject(new Error(`agent process exited (${code}) before it was ready: ${stderr}`)),
    );
  });
}

export async function upgradeDrill(options: UpgradeOptions = {}): Promise<UpgradeSummary> {
  const mode = options.mode ?? 'lean';
  const toVersion = (
    JSON.parse(await readFile(join(repoRoot, 'host-agent/package.json'), 'utf8')) as { version: string }
  ).version;
  const from = options.from ?? (await previousRelease(toVersion));
  const size = SIZES[mode];
  const log = progress('upgrade');
  const engine = await connectEngine();
  const bundle = await bundleStandinPhone();
  const old = await extractRelease(from);
  log('previous release extracted', {
    from,
    commit: old.commit,
    version: old.version,
    dependencies: old.dependencies,
  });
  const dir = await drillDir('cphone-drill-upgrade-');
  const server = await PgServer.init(dir, 'data');
  const scopes: string[] = [];
  const processes: AgentProcess[] = [];
  let fleet: Fleet | undefined;
  try {
    await server.start();
    await server.query('create database cphone');
    fleet = await startFleet({
      databaseUrl: server.url('cphone'),
      hosts: size.hosts,
      usageIntervalMs: 60_000,
    });
    const f = fleet;
    const envOf = (i: number) => {
      const env = f.agentEnv(i, {
        CPHONE_RUNTIME: 'docker',
        CPHONE_DOCKER_SOCKET: engine.socketPath,
        CPHONE_RUNTIME_SCOPE: `drill-${f.hosts[i]?.hostId}`,
        CPHONE_LOG_LEVEL: 'warn',
      });
      return { ...env, DRILL_IMAGE: engine.image, DRILL_BINDS: JSON.stringify(bundle.binds) };
    };
    for (let i = 0; i < size.hosts; i++) {
      scopes.push(`drill-${f.hosts[i]?.hostId}`);
      const p = await startAgentProcess(old.tree, envOf(i));
      if (p.version !== old.version) throw new Error(`the ${from} agent says it is ${p.version}`);
      processes.push(p);
    }
    await fleet.waitForHosts(60_000);
    const hostsApi = fleet.client(HostService);
    const versions = async () =>
      (await hostsApi.listHosts({ pageSize: 100 })).hosts.map((h) => ({
        id: h.hostId,
        v: h.agentVersion,
        c: h.connected,
      }));
    if (!(await versions()).every((h) => h.v === old.version))
      throw new Error('hosts do not show the old release');
    log('old agents connected', { version: old.version, hosts: size.hosts });

    const devices = fleet.client(DeviceService);
    const ids: string[] = [];
    await pool(
      Array.from({ length: size.hosts * size.phonesPerHost }, (_, i) => `phone-${i}`),
      2,
      async (name) => {
        ids.push(await createPhone(f, name));
      },
    );
    const allRunning = () =>
      until(
        'every phone to be RUNNING',
        async () => {
          for (const id of ids)
            if ((await devices.getDevice({ deviceId: id })).device?.state !== DeviceState.RUNNING)
              return false;
          return true;
        },
        120_000,
        250,
      );
    await allRunning();
    const shell = async (id: string) => {
      const r = await devices.execShell({ deviceId: id, command: 'getprop ro.product.model' });
      return r.exitCode === 0;
    };
    for (const id of ids)
      if (!(await shell(id))) throw new Error(`shell on ${id} failed under the old agent`);
    const containers = async () => {
      const out = new Map<string, string>();
      for (const scope of scopes) {
        for (const c of await engine.docker.listContainers({
          all: true,
          filters: { label: [`${LABEL_SCOPE}=${scope}`] },
        })) {
          const info = await engine.docker.getContainer(c.Id).inspect();
          out.set(c.Labels[LABEL_DEVICE_ID] ?? c.Id, `${c.Id}@${info.State.StartedAt}`);
        }
      }
      return out;
    };
    const before = await containers();
    if (before.size !== ids.length) throw new Error(`${before.size} containers for ${ids.length} phones`);
    log('phones running under the old agents', { phones: ids.length });

    // The rolling upgrade: one agent at a time.
    const downtimeMs: number[] = [];
    const stopMs: number[] = [];
    const startMs: number[] = [];
    const connectMs: number[] = [];
    for (let i = 0; i < size.hosts; i++) {
      const hostId = f.hosts[i]?.hostId;
      const started = Date.now();
      const oldProcess = processes[i] as AgentProcess;
      oldProcess.child.kill('SIGTERM');
      const code = await oldProcess.exited;
      if (code !== 0) throw new Error(`the old agent of ${hostId} exited with ${code}`);
      const stopped = Date.now();
      const p = await startAgentProcess(repoRoot, envOf(i));
      processes[i] = p;
      const ready = Date.now();
      await until(
        `host ${hostId} to connect with ${toVersion}`,
        async () => (await versions()).some((h) => h.id === hostId && h.c && h.v === toVersion),
        60_000,
        50,
      );
      downtimeMs.push(Date.now() - started);
      stopMs.push(stopped - started);
      startMs.push(ready - stopped);
      connectMs.push(Date.now() - ready);
      log('agent upgraded', { hostId, downtimeMs: downtimeMs.at(-1) });
    }
    await allRunning();
    const after = await containers();
    let phonesRestarted = 0;
    for (const [device, identity] of before) if (after.get(device) !== identity) phonesRestarted++;
    let phonesNotRunning = 0;
    for (const id of ids)
      if ((await devices.getDevice({ deviceId: id })).device?.state !== DeviceState.RUNNING)
        phonesNotRunning++;
    let shellAfterUpgradeOk = 0;
    for (const id of ids) if (await shell(id).catch(() => false)) shellAfterUpgradeOk++;
    const extra = await createPhone(f, 'after-upgrade');
    ids.push(extra);
    const createdAfterUpgradeRunning = await allRunning().then(
      () => true,
      () => false,
    );
    const hostVersionsAfter = (await versions()).map((h) => h.v);
    const failures: string[] = [];
    if (phonesRestarted > 0) failures.push(`${phonesRestarted} phones restarted`);
    if (phonesNotRunning > 0) failures.push(`${phonesNotRunning} phones not RUNNING after the upgrade`);
    if (shellAfterUpgradeOk !== before.size)
      failures.push(`shell worked on ${shellAfterUpgradeOk} of ${before.size} phones`);
    if (!hostVersionsAfter.every((v) => v === toVersion))
      failures.push(`hosts report ${hostVersionsAfter.join(', ')}`);
    if (!createdAfterUpgradeRunning) failures.push('a phone created after the upgrade did not run');
    return {
      drill: 'upgrade',
      mode,
      passed: failures.length === 0,
      failures,
      figures: {
        fromVersion: old.version,
        fromCommit: old.commit,
        toVersion,
        dependencies: old.dependencies,
        agents: size.hosts,
        phones: before.size,
        downtimeMs,
        stopMs,
        startMs,
        connectMs,
        phonesRestarted,
        phonesNotRunning,
        shellAfterUpgradeOk,
        hostVersionsAfter,
        createdAfterUpgradeRunning,
      },
    };
  } finally {
    for (const p of processes) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
    await fleet?.close();
    for (const scope of scopes) await removeScope(engine.docker, scope).catch(() => undefined);
    await server.stop('immediate');
    await rm(dir, { recursive: true, force: true });
    await rm(old.tree, { recursive: true, force: true });
    await rm(bundle.dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const from = process.argv.find((a) => a.startsWith('--from='))?.slice('--from='.length);
  await runAsCommand(() => upgradeDrill({ mode: modeFromArgs(), ...(from !== undefined ? { from } : {}) }));
}
