// Docker-specific behaviour the contract does not cover, against the real engine (podman).
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { contractSpec, waitForTcp } from './contract.js';
import { DockerRuntime } from './docker-runtime.js';
import { ImagePullError } from './errors.js';
import { phoneNetworkFor } from './phone-network.js';
import { connectEngine, removeScope } from './test-engine.js';

describe('DockerRuntime against the engine', () => {
  const run = randomBytes(3).toString('hex');
  const scope = `test-${run}`;
  const network = `cphone-test-${run}`;
  let docker: Docker;
  let socketPath: string;
  let image: string;

  before(async () => {
    ({ docker, socketPath, image } = await connectEngine());
  });

  after(async () => {
    await removeScope(docker, scope);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
  });

  const harness = () => ({ image, idPrefix: `d${run}-` }) as Parameters<typeof contractSpec>[0];

  it('reports a failed pull as ImagePullError naming the image (podman answers 200 with the error inside)', async () => {
    const runtime = new DockerRuntime({ socketPath, config: { scope, network, pullPolicy: 'missing' } });
    const missing = `127.0.0.1:9/cphone/absent:${run}`;
    await assert.rejects(
      runtime.create({ ...contractSpec(harness(), 'pull'), image: missing }),
      (err: unknown) => {
        assert.ok(err instanceof ImagePullError, String(err));
        assert.equal(err.image, missing);
        return true;
      },
    );
    assert.equal(await runtime.inspect(`d${run}-pull`), undefined);
  });

  it('refuses to pull under pullPolicy never', async () => {
    const runtime = new DockerRuntime({ socketPath, config: { scope, network, pullPolicy: 'never' } });
    await assert.rejects(
      runtime.create({ ...contractSpec(harness(), 'never'), image: `localhost/cphone-absent:${run}` }),
      ImagePullError,
    );
  });

  it("creates the tenant's bridge network when missing (removed with its last phone); bridge access gives the container IP, reachable from the host", async () => {
    const runtime = new DockerRuntime({
      socketPath,
      config: { scope, network, pullPolicy: 'never', adbAccess: 'bridge' },
    });
    const spec = contractSpec(harness(), 'bridge');
    await runtime.create(spec);
    const tenantNetwork = phoneNetworkFor(runtime.config, spec.tenantId);
    const info = await docker.getNetwork(tenantNetwork.name).inspect();
    assert.equal(info.Driver, 'bridge');
    assert.equal(info.Labels?.['dev.cphone.tenant-id'], spec.tenantId);
    await runtime.start(spec.deviceId);
    const device = await runtime.inspect(spec.deviceId);
    assert.equal(device?.adb?.port, 5555);
    assert.match(device?.adb?.host ?? '', /^\d+\.\d+\.\d+\.\d+$/);
    assert.deepEqual(device?.network, { ...tenantNetwork, address: device?.adb?.host });
    await waitForTcp(device!.adb!);
    await runtime.remove(spec.deviceId, { keepData: false });
    await assert.rejects(docker.getNetwork(tenantNetwork.name).inspect(), /404|no such network|not found/i);
  });
});
