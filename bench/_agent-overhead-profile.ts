// Summarises a V8 CPU profile (.cpuprofile) for bench/agent-overhead.ts: self time by function and
// by where the code lives (a package in node_modules, a folder of this repo, Node's internals), so
// the bench can say what dominates the agent's idle CPU without a profiler UI.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Where a frame's code lives: `pkg:<name>`, a repo folder such as `host-agent/src/adb`, or a pseudo frame. */
function placeOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.startsWith('node:')) return url.split('/')[0] ?? url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `pkg:${pkg[1]}`;
  const repo = /\/((?:host-agent|control-plane|proto|bench)\/(?:src\/)?[^/]+)/.exec(url);
  return repo?.[1] ?? url;
}

function table(rows: [string, number][], totalMs: number, limit: number): string {
  return rows
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(
      ([name, ms]) =>
        `  ${ms.toFixed(0).padStart(7)} ms ${((ms / totalMs) * 100).toFixed(1).padStart(5)} %  ${name}`,
    )
    .join('\n');
}

/** Text tables: self time by place and by function, with their share of the busy (non-idle) time. */
export function summariseProfile(profile: CpuProfile, limit: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; it is attributed to the sample that follows it.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? 0;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
  }
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busyMs = 0;
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    if (frame.functionName === '(idle)') continue;
    busyMs += ms;
    const place = placeOf(frame);
    byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
    const fn = `${frame.functionName || '(anonymous)'} ${place}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  }
  return [
    `  busy ${busyMs.toFixed(0)} ms of ${wallMs.toFixed(0)} ms (${((busyMs / wallMs) * 100).toFixed(2)} % of a core, main thread, sampled)`,
    ' by place:',
    table([...byPlace], busyMs, limit),
    ' by function:',
    table([...byFunction], busyMs, limit),
  ].join('\n');
}
