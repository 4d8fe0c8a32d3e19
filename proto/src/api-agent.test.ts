import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, type DescEnum, type DescFile, type DescMessage, toJson } from '@bufbuild/protobuf';
import { DescriptorProtoSchema, EnumDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { toAgentDeviceSpec, toAgentInputEvents } from './api-agent.js';
import { file_cphone_agent_v1_agent_service } from './gen/cphone/agent/v1/agent_service_pb.js';
import { file_cphone_agent_v1_command } from './gen/cphone/agent/v1/command_pb.js';
import { file_cphone_agent_v1_device } from './gen/cphone/agent/v1/device_pb.js';
import { file_cphone_agent_v1_device_sync } from './gen/cphone/agent/v1/device_sync_pb.js';
import { file_cphone_agent_v1_host } from './gen/cphone/agent/v1/host_pb.js';
import { file_cphone_agent_v1_input } from './gen/cphone/agent/v1/input_pb.js';
import { file_cphone_agent_v1_metering } from './gen/cphone/agent/v1/metering_pb.js';
import { file_cphone_agent_v1_session } from './gen/cphone/agent/v1/session_pb.js';
import { file_cphone_api_v1_device } from './gen/cphone/api/v1/device_pb.js';
import { file_cphone_api_v1_host } from './gen/cphone/api/v1/host_pb.js';
import { file_cphone_api_v1_input } from './gen/cphone/api/v1/input_pb.js';
import { agentv1, DeviceSpecSchema, GpuMode, InputEventSchema, KeyAction } from './index.js';

// Agents one version behind speak the cphone.api.v1 originals of these types: every copy must
// keep its original's field numbers, types, cardinality, oneofs and enum numbers. buf breaking
// cannot see this (a moved message is a new message to it), so this test is the check.
const AGENT_FILES: readonly DescFile[] = [
  file_cphone_agent_v1_agent_service,
  file_cphone_agent_v1_command,
  file_cphone_agent_v1_device,
  file_cphone_agent_v1_device_sync,
  file_cphone_agent_v1_host,
  file_cphone_agent_v1_input,
  file_cphone_agent_v1_metering,
  file_cphone_agent_v1_session,
];
const API_FILES: readonly DescFile[] = [
  file_cphone_api_v1_device,
  file_cphone_api_v1_host,
  file_cphone_api_v1_input,
];

const COPIES = [
  'DeviceSpec',
  'DeviceState',
  'GpuMode',
  'HostLoad',
  'HostResources',
  'InputEvent',
  'KeyAction',
  'KeyInput',
  'PowerState',
  'RestartPolicy',
  'ScreenSpec',
  'SwipeInput',
  'TapInput',
  'TextInput',
];

type Desc = DescMessage | DescEnum;
const byName = (files: readonly DescFile[]) =>
  new Map<string, Desc>(files.flatMap((f): Desc[] => [...f.messages, ...f.enums]).map((d) => [d.name, d]));

/** A descriptor as JSON with both package names made one, options dropped (deprecation is API-only). */
function shape(desc: Desc, dropFields: readonly number[] = []): unknown {
  const json =
    desc.kind === 'message'
      ? (toJson(DescriptorProtoSchema, desc.proto) as { field?: { number: number }[] })
      : toJson(EnumDescriptorProtoSchema, desc.proto);
  const text = JSON.stringify(json, (key, value) => (key === 'options' ? undefined : value))
    .replaceAll('.cphone.api.v1.', '.cphone.PKG.')
    .replaceAll('.cphone.agent.v1.', '.cphone.PKG.');
  const out = JSON.parse(text) as {
    field?: { number: number }[];
    reservedRange?: unknown;
    reservedName?: unknown;
  };
  if (out.field) out.field = out.field.filter((f) => !dropFields.includes(f.number));
  delete out.reservedRange;
  delete out.reservedName;
  return out;
}

function reservedNumbers(desc: DescMessage): number[] {
  return desc.proto.reservedRange.flatMap((r) =>
    Array.from({ length: r.end - r.start }, (_, i) => r.start + i),
  );
}

test('every cphone.agent.v1 type named like a cphone.api.v1 type is a wire-identical copy of it', () => {
  const agent = byName(AGENT_FILES);
  const api = byName(API_FILES);
  const shared = [...agent.keys()].filter((name) => api.has(name)).sort();
  assert.deepEqual(shared, COPIES);
  for (const name of shared) {
    const copy = agent.get(name);
    const original = api.get(name);
    assert.ok(copy && original && copy.kind === original.kind, name);
    if (copy.kind === 'message' && original.kind === 'message') {
      const reserved = reservedNumbers(copy);
      for (const n of reserved) {
        const dropped = original.fields.find((f) => f.number === n);
        if (dropped)
          assert.ok(copy.proto.reservedName.includes(dropped.name), `${name}: reserve the name of ${n}`);
      }
      assert.deepEqual(shape(copy), shape(original, reserved), name);
    } else {
      assert.deepEqual(shape(copy), shape(original), name);
    }
  }
});

test('the agent protocol depends on no cphone.api.v1 file', () => {
  for (const file of AGENT_FILES) {
    const deps = file.dependencies.map((d) => d.name).filter((d) => d.startsWith('cphone/api/'));
    assert.deepEqual(deps, [], file.name);
  }
});

test('a spec handed to the agent keeps every field but image_id, and carries nothing unknown', () => {
  const spec = create(DeviceSpecSchema, {
    imageId: 'android-14',
    imageRef: 'redroid/redroid:14.0.0-latest',
    vcpuMillicores: 2000,
    memoryMib: 4096,
    storageGib: 32,
    screen: { widthPx: 1080, heightPx: 2400, dpi: 420, fps: 60 },
    gpuMode: GpuMode.AUTO,
    properties: { 'ro.product.model': 'Pixel 8', 'ro.product.brand': 'google' },
  });
  const sent = toAgentDeviceSpec(spec);
  assert.deepEqual(toJson(agentv1.DeviceSpecSchema, sent), {
    imageRef: 'redroid/redroid:14.0.0-latest',
    vcpuMillicores: 2000,
    memoryMib: 4096,
    storageGib: 32,
    screen: { widthPx: 1080, heightPx: 2400, dpi: 420, fps: 60 },
    gpuMode: 'GPU_MODE_AUTO',
    properties: { 'ro.product.model': 'Pixel 8', 'ro.product.brand': 'google' },
  });
  assert.equal(sent.$unknown, undefined);
});

test('input events are handed over case by case', () => {
  const events = [
    create(InputEventSchema, { kind: { case: 'tap', value: { x: 10, y: 20, durationMs: 5 } } }),
    create(InputEventSchema, {
      kind: { case: 'swipe', value: { fromX: 1, fromY: 2, toX: 3, toY: 4, durationMs: 300 } },
    }),
    create(InputEventSchema, {
      kind: { case: 'key', value: { keycode: 4, action: KeyAction.DOWN, metaState: 1 } },
    }),
    create(InputEventSchema, { kind: { case: 'text', value: { text: 'héllo' } } }),
  ];
  const sent = toAgentInputEvents(events);
  assert.deepEqual(
    sent.map((e) => e.kind.case),
    ['tap', 'swipe', 'key', 'text'],
  );
  const key = sent[2]?.kind;
  assert.ok(key?.case === 'key');
  assert.equal(key.value.action, agentv1.KeyAction.DOWN);
  assert.equal(sent[3]?.kind.case === 'text' ? sent[3].kind.value.text : '', 'héllo');
});
