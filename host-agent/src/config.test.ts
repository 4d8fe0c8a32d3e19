import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, defaultArch, describeConfig, loadConfig } from './config.js';

const base = { CPHONE_HOST_ID: 'h-1', CPHONE_HOST_CREDENTIAL: 's3cret' };
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cphone-config-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function rejects(env: Record<string, string>, variable: string, value: string): void {
  assert.throws(
    () => loadConfig({ ...base, ...env }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.variable === variable &&
      err.message.includes(variable) &&
      err.message.includes(JSON.stringify(value)),
  );
}

test('defaults are documented values and the result is frozen', () => {
  const config = loadConfig(base);
  assert.equal(config.controlPlane, '127.0.0.1:8443');
  assert.equal(config.runtime, 'docker');
  assert.equal(config.dockerSocket, '/var/run/docker.sock');
  assert.equal(config.dataDir, '/var/lib/cphone-agent');
  assert.equal(config.scrcpyServer, '/var/lib/cphone-agent/scrcpy-server-v3.3.3');
  assert.equal(config.httpPort, 9102);
  assert.equal(config.maxDevices, 32);
  assert.equal(config.usageIntervalMs, 60_000);
  assert.equal(config.reconcileConcurrency, 8);
  assert.deepEqual(config.capacity, {});
  assert.deepEqual(config.labels, {});
  assert.equal(config.arch, defaultArch());
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.labels));
});

test('every setting is read from its variable', async () => {
  const credentialFile = join(dir, 'credential');
  await writeFile(credentialFile, 'from-file\n');
  const config = loadConfig({
    CPHONE_HOST_ID: 'h-9',
    CPHONE_HOST_CREDENTIAL_FILE: credentialFile,
    CPHONE_CONTROL_PLANE: 'cp.example.net:9443',
    CPHONE_RUNTIME: 'sim',
    CPHONE_CAPACITY_VCPU_MILLICORES: '64000',
    CPHONE_CAPACITY_MEMORY_MIB: '131072',
    CPHONE_CAPACITY_STORAGE_GIB: '2000',
    CPHONE_MAX_DEVICES: '40',
    CPHONE_LABELS: 'zone=rack-3, gpu=true',
    CPHONE_AGENT_DATA_DIR: dir,
    CPHONE_AGENT_HTTP_PORT: '0',
    CPHONE_ARCH: 'arm64',
    CPHONE_SCRCPY_SERVER: '/opt/scrcpy/server',
  });
  assert.equal(config.credential, 'from-file');
  assert.equal(config.scrcpyServer, '/opt/scrcpy/server');
  assert.equal(config.controlPlane, 'cp.example.net:9443');
  assert.equal(config.runtime, 'sim');
  assert.deepEqual(config.capacity, { vcpuMillicores: 64000, memoryMib: 131072, storageGib: 2000 });
  assert.equal(config.maxDevices, 40);
  assert.deepEqual(config.labels, { zone: 'rack-3', gpu: 'true' });
  assert.equal(config.dataDir, dir);
  assert.equal(config.httpPort, 0);
  assert.equal(config.arch, 'arm64');
});

test('bad values fail naming the variable and the value', () => {
  rejects({ CPHONE_CONTROL_PLANE: 'no-port' }, 'CPHONE_CONTROL_PLANE', 'no-port');
  rejects({ CPHONE_CONTROL_PLANE: 'host:70000' }, 'CPHONE_CONTROL_PLANE', 'host:70000');
  rejects({ CPHONE_RUNTIME: 'lxc' }, 'CPHONE_RUNTIME', 'lxc');
  rejects({ CPHONE_AGENT_HTTP_PORT: '80a' }, 'CPHONE_AGENT_HTTP_PORT', '80a');
  rejects({ CPHONE_CAPACITY_MEMORY_MIB: '-5' }, 'CPHONE_CAPACITY_MEMORY_MIB', '-5');
  rejects({ CPHONE_LABELS: 'zone' }, 'CPHONE_LABELS', 'zone');
  rejects({ CPHONE_ARCH: 'riscv64' }, 'CPHONE_ARCH', 'riscv64');
  rejects({ CPHONE_CA_FILE: join(dir, 'missing.pem') }, 'CPHONE_CA_FILE', join(dir, 'missing.pem'));
  assert.throws(() => loadConfig({ CPHONE_HOST_CREDENTIAL: 'x' }), /CPHONE_HOST_ID/);
  assert.throws(() => loadConfig({ CPHONE_HOST_ID: 'h' }), /CPHONE_HOST_CREDENTIAL/);
});

test('the logged form masks the credential; x64 is reported as amd64', () => {
  const described = describeConfig(loadConfig(base));
  assert.equal(described.credential, '***');
  assert.ok(!JSON.stringify(described).includes('s3cret'));
  assert.equal(defaultArch('x64'), 'amd64');
  assert.equal(defaultArch('arm64'), 'arm64');
});
