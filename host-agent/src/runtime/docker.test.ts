// The contract suite over a real Docker Engine API: podman's compatible service with the local
// stand-in image (scripts/setup-podman.sh provides both). Without them this file fails, naming the
// missing piece: a skipped runtime test would hide a broken host.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { runtimeContract } from './contract.js';
import { DockerRuntime } from './docker-runtime.js';
import { volumeName } from './redroid-options.js';
import { bundleStandinPhone, connectEngine, execIn as exec, removeScope } from './test-engine.js';

runtimeContract('docker (podman)', async () => {
  const { docker, socketPath, image } = await connectEngine();

  const bundle = await bundleStandinPhone();
  const run = randomBytes(3).toString('hex');
  const scope = `test-${run}`;
  const runtimeConfig = {
    scope,
    network: 'cphone-test',
    pullPolicy: 'never' as const,
    binds: bundle.binds,
  };
  const container = (deviceId: string) => `cphone-${deviceId}`;
  return {
    image,
    idPrefix: `t${run}-`,
    speaksAdb: true,
    async open() {
      return new DockerRuntime({ socketPath, config: runtimeConfig });
    },
    async writeData(deviceId, name, content) {
      const r = await exec(docker, container(deviceId), [
        'sh',
        '-c',
        'printf %s "$1" > "/data/$2"',
        'sh',
        content,
        name,
      ]);
      assert.equal(r.code, 0, `writing /data/${name} in ${deviceId}`);
    },
    async readData(deviceId, name) {
      const r = await exec(docker, container(deviceId), ['cat', `/data/${name}`]);
      return r.code === 0 ? r.stdout : undefined;
    },
    async dataExists(deviceId) {
      const name = volumeName(new DockerRuntime({ config: runtimeConfig }).config, deviceId);
      return docker
        .getVolume(name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    },
    async cleanup() {
      await removeScope(docker, scope);
      await rm(bundle.dir, { recursive: true, force: true });
    },
  };
});
