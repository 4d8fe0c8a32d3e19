// One table of device specs through both sides of the device-spec contract, with the same verdict
// required of each: the control plane's public API (BatchCreateDevices on a real control plane,
// placed on a host whose agent stream is open) and the host agent (the DesiredDevice mapped and
// created by the real reconciler over the sim runtime). A spec the API accepts and the agent
// refuses is a phone that is billed and then halted INVALID_SPEC on its host; the reverse is a
// phone the agent could run that nobody can create. A refusal must also name the same field.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import {
  bearerTransport,
  createAgentClient,
  startTestControlPlane,
  TestAgent,
  type TestControlPlane,
} from '@cphone/control-plane/testing';
import { createSimRuntime, portOpenBootProbe, Reconciler, type SimRuntime } from '@cphone/host-agent';
import {
  agentv1,
  DeviceService,
  GpuMode,
  HostService,
  ImageService,
  PowerState,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';

/** A spec as plain values, so one row feeds the API's message and the agent's alike. */
interface Spec {
  readonly vcpuMillicores?: number;
  readonly memoryMib?: number;
  readonly storageGib?: number;
  readonly screen?: {
    readonly widthPx: number;
    readonly heightPx: number;
    readonly dpi: number;
    readonly fps: number;
  };
  readonly gpuMode?: number;
  readonly properties?: Readonly<Record<string, string>>;
}

interface Row {
  readonly name: string;
  /** Changes to the typical phone below. */
  readonly spec: Spec;
  /** The field both sides must name when they refuse the spec (a path inside the spec); unset: both accept. */
  readonly refuses?: string;
}

const IMAGE_ID = 'contract-android-14';
const IMAGE_REF = 'redroid/redroid:14.0.0_64only-latest';

const typical = {
  vcpuMillicores: 2000,
  memoryMib: 4096,
  storageGib: 32,
  screen: { widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 },
  gpuMode: GpuMode.GUEST,
  properties: { 'ro.product.model': 'Pixel 8' },
} satisfies Spec;

const screen = (change: Partial<typeof typical.screen>) => ({ screen: { ...typical.screen, ...change } });
const props = (properties: Record<string, string>) => ({ properties });
const manyProperties = (count: number) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`ro.cphone.p${i}`, String(i)]));

const TABLE: readonly Row[] = [
  { name: 'a typical phone', spec: {} },
  { name: 'the smallest screen', spec: screen({ widthPx: 1, heightPx: 1 }) },
  { name: 'the largest screen', spec: screen({ widthPx: 8192, heightPx: 8192 }) },
  { name: 'a screen too wide', spec: screen({ widthPx: 8193 }), refuses: 'screen.width_px' },
  { name: 'a screen too tall', spec: screen({ heightPx: 100_000 }), refuses: 'screen.height_px' },
  { name: 'the lowest density', spec: screen({ dpi: 60 }) },
  { name: 'the highest density', spec: screen({ dpi: 1000 }) },
  { name: 'a density too low', spec: screen({ dpi: 59 }), refuses: 'screen.dpi' },
  { name: 'a density too high', spec: screen({ dpi: 1001 }), refuses: 'screen.dpi' },
  { name: 'the lowest frame rate', spec: screen({ fps: 1 }) },
  { name: 'the highest frame rate', spec: screen({ fps: 120 }) },
  { name: 'a frame rate just too high', spec: screen({ fps: 121 }), refuses: 'screen.fps' },
  { name: 'a frame rate far too high', spec: screen({ fps: 240 }), refuses: 'screen.fps' },
  { name: 'an unset frame rate takes the default', spec: screen({ fps: 0 }) },
  { name: 'the smallest resources', spec: { vcpuMillicores: 1, memoryMib: 1, storageGib: 1 } },
  {
    name: 'the largest resources',
    spec: { vcpuMillicores: 1_024_000, memoryMib: 1_048_576, storageGib: 65_536 },
  },
  { name: 'negative CPU', spec: { vcpuMillicores: -1 }, refuses: 'vcpu_millicores' },
  { name: 'too much CPU', spec: { vcpuMillicores: 1_024_001 }, refuses: 'vcpu_millicores' },
  { name: 'a huge CPU figure', spec: { vcpuMillicores: 2_147_483_647 }, refuses: 'vcpu_millicores' },
  { name: 'too much memory', spec: { memoryMib: 1_048_577 }, refuses: 'memory_mib' },
  { name: 'negative memory', spec: { memoryMib: -4096 }, refuses: 'memory_mib' },
  { name: 'too much storage', spec: { storageGib: 65_537 }, refuses: 'storage_gib' },
  { name: 'host GPU', spec: { gpuMode: GpuMode.HOST } },
  { name: 'automatic GPU', spec: { gpuMode: GpuMode.AUTO } },
  { name: 'an unknown GPU mode', spec: { gpuMode: 7 }, refuses: 'gpu_mode' },
  { name: 'no properties', spec: props({}) },
  { name: 'the most properties', spec: props(manyProperties(64)) },
  { name: 'too many properties', spec: props(manyProperties(65)), refuses: 'properties' },
  {
    name: 'a persist.* property',
    spec: props({ 'persist.sys.timezone': 'Europe/Paris' }),
    refuses: 'properties["persist.sys.timezone"]',
  },
  { name: 'a property outside ro.*', spec: props({ 'sys.foo': '1' }), refuses: 'properties["sys.foo"]' },
  { name: 'a bare ro. key', spec: props({ 'ro.': '1' }), refuses: 'properties["ro."]' },
  { name: 'a key with a space', spec: props({ 'ro.a b': '1' }), refuses: 'properties["ro.a b"]' },
  { name: 'the longest key', spec: props({ [`ro.${'k'.repeat(125)}`]: '1' }) },
  {
    name: 'a key too long',
    spec: props({ [`ro.${'k'.repeat(126)}`]: '1' }),
    refuses: `properties["ro.${'k'.repeat(126)}"]`,
  },
  { name: 'a value with spaces and accents', spec: props({ 'ro.product.model': 'Téléphone de test' }) },
  { name: 'the longest value', spec: props({ 'ro.x': 'v'.repeat(92) }) },
  { name: 'a value too long', spec: props({ 'ro.x': 'v'.repeat(93) }), refuses: 'properties["ro.x"]' },
  {
    name: 'a value too long in UTF-8 bytes',
    spec: props({ 'ro.x': 'é'.repeat(47) }),
    refuses: 'properties["ro.x"]',
  },
  { name: 'a huge value', spec: props({ 'ro.x': 'v'.repeat(1 << 20) }), refuses: 'properties["ro.x"]' },
  { name: 'a newline in a value', spec: props({ 'ro.x': 'a\nb' }), refuses: 'properties["ro.x"]' },
  { name: 'a NUL in a value', spec: props({ 'ro.x': 'a\u0000b' }), refuses: 'properties["ro.x"]' },
  { name: 'a DEL in a value', spec: props({ 'ro.x': 'a\u007fb' }), refuses: 'properties["ro.x"]' },
];

type Verdict = { accepted: true; deviceId: string } | { accepted: false; message: string };

let testPlane: TestControlPlane;
let agent: TestAgent;
let agentClient: ReturnType<typeof createAgentClient>;
let devices: ReturnType<typeof createClient<typeof DeviceService>>;
let tenantId: string;
let simDir: string;
let sim: SimRuntime;
let reconciler: Reconciler;

before(async () => {
  testPlane = await startTestControlPlane({ grpcHost: '127.0.0.1' });
  const { plane } = testPlane;
  const token = plane.bootstrapToken ?? '';
  const client = <S extends Parameters<typeof createClient>[0]>(service: S) =>
    createClient(service, bearerTransport(plane.httpUrl, token));
  devices = client(DeviceService);
  await client(ImageService).createImage({
    imageId: IMAGE_ID,
    image: { displayName: 'Android 14', containerImage: IMAGE_REF, archs: ['arm64'] },
  });
  const tenant = await client(TenantService).createTenant({
    kind: TenantKind.RESELLER,
    displayName: 'contract reseller',
  });
  tenantId = tenant.tenant?.tenantId ?? '';
  // One host with room for every accepted row at once, and the gpu label GPU_MODE_HOST asks for.
  const enrolled = await client(HostService).enrollHost({
    name: 'contract-host',
    arch: 'arm64',
    labels: { gpu: 'true' },
  });
  agentClient = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '');
  agent = TestAgent.connect(agentClient, {
    hostId: enrolled.host?.hostId ?? '',
    credential: enrolled.credential,
    arch: 'arm64',
    runtimeKind: 'sim',
    capacity: {
      vcpuMillicores: 64_000_000n,
      memoryBytes: 64n << 40n,
      storageBytes: 4n << 50n,
      devices: 1000,
    },
  });
  await agent.next('welcome');
  agent.startHeartbeats(500);

  simDir = await mkdtemp(join(tmpdir(), 'cphone-contract-'));
  sim = await createSimRuntime({ dataDir: simDir });
  reconciler = new Reconciler({
    runtime: sim,
    bootProbe: portOpenBootProbe(10),
    logger: pino({ level: 'silent' }),
    onStatus: () => {},
    resyncIntervalMs: 60_000,
  });
  await reconciler.start();
});

after(async () => {
  await reconciler?.close();
  await sim?.close();
  await rm(simDir, { recursive: true, force: true });
  agent?.cancel();
  agentClient?.close();
  await testPlane?.close();
});

/**
 * The control plane's verdict: created, or refused with INVALID_ARGUMENT. Any other code is a
 * refusal that names no field (the host has room for every row meant to pass), so it fails the row.
 */
async function throughApi(spec: Spec, index = 0): Promise<Verdict> {
  const valid = { spec: { ...typical, imageId: IMAGE_ID }, desiredPowerState: PowerState.STOPPED };
  try {
    const created = await devices.batchCreateDevices({
      tenantId,
      requests: [
        ...Array.from({ length: index }, () => valid),
        { spec: { ...spec, imageId: IMAGE_ID }, desiredPowerState: PowerState.STOPPED },
      ],
    });
    return { accepted: true, deviceId: created.devices.at(-1)?.deviceId ?? '' };
  } catch (error) {
    const e = ConnectError.from(error);
    return { accepted: false, message: e.code === Code.InvalidArgument ? e.rawMessage : e.message };
  }
}

/** The agent's verdict on each device: STOPPED (created), or ERROR with INVALID_SPEC. */
async function throughAgent(revision: bigint, desired: readonly agentv1.DesiredDevice[]): Promise<Verdict[]> {
  await reconciler.applyDesired(create(agentv1.DesiredDevicesSchema, { revision, devices: [...desired] }));
  const { STOPPED, ERROR } = agentv1.DeviceState;
  const seen = await waitFor(
    'every device settled on the agent',
    () => desired.map((d) => reconciler.observed(d.deviceId)),
    (observed) => observed.every((o) => o?.state === STOPPED || o?.state === ERROR),
  );
  return seen.map((o): Verdict => {
    if (o?.state === STOPPED) return { accepted: true, deviceId: o.deviceId };
    assert.equal(o?.reason, 'INVALID_SPEC', o?.message);
    return { accepted: false, message: o?.message ?? '' };
  });
}

/** A row as a control plane without the contract would have sent it: the spec, image resolved. */
function desiredOf(spec: Spec, i: number): agentv1.DesiredDevice {
  return create(agentv1.DesiredDeviceSchema, {
    deviceId: `contract-${i}`,
    tenantId,
    specRevision: 1n,
    powerState: agentv1.PowerState.STOPPED,
    restartPolicy: agentv1.RestartPolicy.ALWAYS,
    spec: { ...spec, imageRef: IMAGE_REF },
  });
}

/** The latest DesiredDevice the control plane sent the host for each device. */
function sentToHost(): Map<string, agentv1.DesiredDevice> {
  const latest = new Map<string, agentv1.DesiredDevice>();
  for (const { body } of agent.received) {
    if (body.case === 'desiredDevices') for (const d of body.value.devices) latest.set(d.deviceId, d);
    if (body.case === 'deviceUpsert' && body.value.device)
      latest.set(body.value.device.deviceId, body.value.device);
  }
  return latest;
}

const specOf = (row: Row): Spec => ({ ...typical, ...row.spec });
const show = (v: Verdict | undefined) => (v?.accepted ? 'accepted' : `refused (${v?.message.slice(0, 160)})`);

test('the API and the agent give every spec of the table the same verdict, naming the same field', async () => {
  const onAgent = await throughAgent(
    1n,
    TABLE.map((row, i) => desiredOf(specOf(row), i)),
  );
  const mismatches: string[] = [];
  const created: string[] = [];
  for (const [i, row] of TABLE.entries()) {
    const api = await throughApi(specOf(row));
    const agentVerdict = onAgent[i];
    if (api.accepted) created.push(api.deviceId);
    const [apiOk, agentOk] =
      row.refuses === undefined
        ? [api.accepted, agentVerdict?.accepted === true]
        : [
            !api.accepted && api.message.startsWith(`invalid requests[0].spec.${row.refuses} `),
            agentVerdict?.accepted === false &&
              agentVerdict.message.includes(`invalid device spec: ${row.refuses}=`),
          ];
    if (!apiOk || !agentOk) {
      const expected = row.refuses === undefined ? 'accept' : `refuse ${row.refuses}`;
      mismatches.push(`${row.name}: expected ${expected}; API ${show(api)}; agent ${show(agentVerdict)}`);
    }
  }
  assert.deepEqual(mismatches, []);

  // And what the control plane really sent the host for the phones it accepted, the agent runs.
  const latest = await waitFor('the host was sent every accepted phone', sentToHost, (sentSoFar) =>
    created.every((id) => sentSoFar.has(id)),
  );
  const sent = created.map((id) => latest.get(id) as agentv1.DesiredDevice);
  const verdicts = await throughAgent(2n, sent);
  assert.deepEqual(
    verdicts.filter((v) => !v.accepted).map(show),
    [],
    'the agent refused a phone the API accepted',
  );
});

test('a refusal names the request it is in', async () => {
  const verdict = await throughApi(specOf({ name: 'fourth', spec: screen({ fps: 121 }) }), 3);
  assert.ok(!verdict.accepted);
  assert.match(verdict.message, /^invalid requests\[3\]\.spec\.screen\.fps 121: /);
});
