// Deletion converges whatever the agent has seen: phones deleted right after they were created (the
// agent may never have heard of them, or heard of them and made nothing yet) reach DELETED and give
// their host's resources back, with a real agent (sim runtime) on a real control plane.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { DeviceState, HostState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let agent: Agent;

before(async () => {
  h = await startHarness();
  agent = await h.startAgent();
  await h.waitForHost(HostState.READY, true);
});

after(async () => {
  await agent?.close();
  await h?.close();
});

test('ten create-then-delete pairs all end DELETED and the host holds nothing afterwards', async () => {
  const ids: string[] = [];
  // Sequential pairs: each delete lands while the create's desired-state nudge is still in flight.
  for (let i = 0; i < 5; i++) {
    const phone = await h.createPhone(`gone-${i}`);
    ids.push(phone.deviceId);
    await h.devices.deleteDevice({ deviceId: phone.deviceId });
  }
  // Concurrent pairs.
  ids.push(
    ...(await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const phone = await h.createPhone(`gone-c${i}`);
        await h.devices.deleteDevice({ deviceId: phone.deviceId });
        return phone.deviceId;
      }),
    )),
  );
  for (const id of ids) await h.waitForState(id, DeviceState.DELETED);
  const host = await waitFor(
    'the host to hold nothing',
    async () => (await h.hosts.getHost({ hostId: h.hostId })).host,
    (x) => x?.allocated?.devices === 0,
  );
  assert.equal(host?.allocated?.vcpuMillicores, 0n);
  assert.equal(host?.allocated?.storageBytes, 0n);
});
