import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { DEVICE_SPEC_LIMITS, deviceSpecViolation } from './device-spec.js';
import { agentv1, GpuMode, PowerState, RestartPolicy } from './index.js';
import { GPU_MODES, POWER_STATES, RESTART_POLICIES } from './spellings.js';

const valid = {
  imageRef: 'redroid/redroid:14.0.0_64only-latest',
  vcpuMillicores: 2000,
  memoryMib: 4096,
  storageGib: 32,
  screen: { widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 },
  gpuMode: agentv1.GpuMode.GUEST,
  properties: { 'ro.product.model': 'Pixel 8' },
} satisfies MessageInitShape<typeof agentv1.DeviceSpecSchema>;

interface Change {
  imageRef?: string;
  vcpuMillicores?: number;
  memoryMib?: number;
  storageGib?: number;
  screen?: Partial<typeof valid.screen> | undefined;
  /** A number, so that values outside the enum can be tried. */
  gpuMode?: number;
  properties?: Record<string, string>;
}
const spec = (change: Change = {}) => create(agentv1.DeviceSpecSchema, { ...valid, ...change });
const screen = (change: Partial<typeof valid.screen>) => ({ screen: { ...valid.screen, ...change } });
const fieldOf = (s: agentv1.DeviceSpec, partial = false) => deviceSpecViolation(s, { partial })?.field;

describe('deviceSpecViolation', () => {
  test('a valid spec, and every limit at its edge, pass', () => {
    const L = DEVICE_SPEC_LIMITS;
    assert.equal(deviceSpecViolation(spec()), undefined);
    for (const edge of ['min', 'max'] as const) {
      const s = spec({
        vcpuMillicores: L.vcpuMillicores[edge],
        memoryMib: L.memoryMib[edge],
        storageGib: L.storageGib[edge],
        screen: {
          widthPx: L.screen.widthPx[edge],
          heightPx: L.screen.heightPx[edge],
          dpi: L.screen.dpi[edge],
          fps: L.screen.fps[edge],
        },
      });
      assert.equal(deviceSpecViolation(s), undefined, edge);
    }
    const props = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`ro.p${i}`, 'v'.repeat(92)]));
    assert.equal(deviceSpecViolation(spec({ properties: props })), undefined);
    assert.equal(deviceSpecViolation(spec({ gpuMode: agentv1.GpuMode.UNSPECIFIED })), undefined);
  });

  test('names the first field outside the contract, as a proto field path', () => {
    assert.equal(fieldOf(spec({ imageRef: '' })), 'image_ref');
    assert.equal(fieldOf(spec({ imageRef: 'redroid/redroid:14 latest' })), 'image_ref');
    assert.equal(fieldOf(spec({ imageRef: 'r'.repeat(513) })), 'image_ref');
    assert.equal(fieldOf(spec({ vcpuMillicores: 0 })), 'vcpu_millicores');
    assert.equal(fieldOf(spec({ vcpuMillicores: 1_024_001 })), 'vcpu_millicores');
    assert.equal(fieldOf(spec({ vcpuMillicores: 0.5 })), 'vcpu_millicores');
    assert.equal(fieldOf(spec({ memoryMib: -1 })), 'memory_mib');
    assert.equal(fieldOf(spec({ storageGib: 65_537 })), 'storage_gib');
    assert.equal(fieldOf(spec({ screen: undefined })), 'screen.width_px');
    assert.equal(fieldOf(spec(screen({ heightPx: 8193 }))), 'screen.height_px');
    assert.equal(fieldOf(spec(screen({ dpi: 59 }))), 'screen.dpi');
    assert.equal(fieldOf(spec(screen({ fps: 121 }))), 'screen.fps');
    assert.equal(fieldOf(spec({ gpuMode: 9 })), 'gpu_mode');
    assert.equal(fieldOf(spec({ vcpuMillicores: -1, screen: { fps: 500 } })), 'vcpu_millicores');
  });

  test('properties: ro.* keys only, a bounded count, bounded printable values', () => {
    const v = (properties: Record<string, string>) => deviceSpecViolation(spec({ properties }));
    assert.deepEqual(v({ 'persist.sys.timezone': 'UTC' }), {
      field: 'properties["persist.sys.timezone"]',
      value: 'persist.sys.timezone',
      reason: 'keys must start with "ro.": Redroid sets no other property at boot',
    });
    assert.equal(v({ 'ro.': '1' })?.field, 'properties["ro."]');
    assert.equal(v({ 'ro.a b': '1' })?.field, 'properties["ro.a b"]');
    assert.equal(v({ [`ro.${'k'.repeat(126)}`]: '1' })?.reason.includes('128'), true);
    assert.equal(v({ 'ro.x': 'é'.repeat(47) })?.reason, 'must be at most 92 bytes of UTF-8');
    for (const control of ['\n', '\u0000', '\u007f', '\u0085']) {
      assert.equal(v({ 'ro.x': `a${control}b` })?.reason, 'must not contain control characters');
    }
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`ro.p${i}`, '1']));
    assert.deepEqual(v(many), { field: 'properties', value: 65, reason: 'must hold at most 64 properties' });
    // The first violation is the same whatever order the map was built in.
    assert.equal(v({ 'ro.z': '\n', 'ro.a': '\n' })?.field, 'properties["ro.a"]');
  });

  test('echoes at most 100 characters of a bad value', () => {
    const found = deviceSpecViolation(spec({ properties: { 'ro.x': 'v'.repeat(1 << 20) } }));
    assert.equal(found?.value, `${'v'.repeat(100)}…`);
  });

  test('partial: zero and empty fields are unset, set ones are still checked', () => {
    const empty = create(agentv1.DeviceSpecSchema);
    assert.equal(deviceSpecViolation(empty, { partial: true }), undefined);
    assert.equal(fieldOf(empty), 'image_ref');
    assert.equal(fieldOf(create(agentv1.DeviceSpecSchema, { screen: { fps: 200 } }), true), 'screen.fps');
    assert.equal(fieldOf(create(agentv1.DeviceSpecSchema, { memoryMib: -1 }), true), 'memory_mib');
    assert.equal(
      fieldOf(create(agentv1.DeviceSpecSchema, { properties: { 'persist.x': '1' } }), true),
      'properties["persist.x"]',
    );
  });
});

describe('spellings', () => {
  test('one name per value, the same numbers in both packages, UNSPECIFIED as the proto says', () => {
    assert.deepEqual(RESTART_POLICIES.names, ['always', 'on_failure', 'never']);
    assert.deepEqual(POWER_STATES.names, ['running', 'stopped']);
    assert.deepEqual(GPU_MODES.names, ['guest', 'host', 'auto']);
    for (const s of [RESTART_POLICIES, POWER_STATES, GPU_MODES] as const) {
      for (const name of s.names as string[]) {
        const agent = (s.agent as (n: string) => number)(name);
        assert.equal(agent, (s.api as (n: string) => number)(name), name);
        assert.equal((s.name as (v: number) => string | undefined)(agent), name);
      }
    }
    assert.equal(RESTART_POLICIES.name(RestartPolicy.UNSPECIFIED), 'always');
    assert.equal(RESTART_POLICIES.name(agentv1.RestartPolicy.ON_FAILURE), 'on_failure');
    assert.equal(POWER_STATES.name(PowerState.UNSPECIFIED), 'running');
    assert.equal(GPU_MODES.name(GpuMode.UNSPECIFIED), 'guest');
    assert.equal(GPU_MODES.name(7 as GpuMode), undefined);
    assert.equal(RESTART_POLICIES.api('never'), RestartPolicy.NEVER);
    assert.equal(POWER_STATES.agent('stopped'), agentv1.PowerState.STOPPED);
  });
});
