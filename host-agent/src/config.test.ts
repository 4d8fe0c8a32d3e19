import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, defaultArch, describeConfig, loadConfig, streamEndpoint } from './config.js';

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
  assert.equal(config.httpBind, '127.0.0.1');
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
    CPHONE_AGENT_HTTP_BIND: '10.0.0.7',
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
  assert.equal(config.httpBind, '10.0.0.7');
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

test('stream settings: documented defaults, every variable read, bad values named', async () => {
  const defaults = loadConfig(base).stream;
  assert.equal(defaults.enabled, true);
  assert.equal(defaults.bind, '0.0.0.0');
  assert.equal(defaults.port, 4443);
  assert.equal(defaults.publicUrl, undefined);
  assert.equal(defaults.tls, true);
  assert.equal(defaults.rtcListenIp, '0.0.0.0');
  assert.equal(defaults.rtcPort, 40_000);
  assert.ok(defaults.workers >= 1);
  assert.equal(defaults.controlSeats, 1);
  assert.equal(defaults.maxViewers, 10);
  assert.equal(defaults.roomGraceMs, 30_000);
  assert.ok(Object.isFrozen(defaults));
  assert.equal(streamEndpoint(defaults, 4443, 'rack3-h12'), 'wss://rack3-h12:4443/signal');

  const cert = join(dir, 'stream.pem');
  await writeFile(cert, 'pem');
  const stream = loadConfig({
    ...base,
    CPHONE_STREAM_BIND: '127.0.0.1',
    CPHONE_STREAM_PORT: '0',
    CPHONE_STREAM_PUBLIC_URL: 'wss://h12.example.net:443',
    CPHONE_STREAM_TLS_CERT: cert,
    CPHONE_STREAM_TLS_KEY: cert,
    CPHONE_RTC_LISTEN_IP: '10.0.0.12',
    CPHONE_RTC_ANNOUNCED_ADDRESS: '203.0.113.12',
    CPHONE_RTC_PORT: '50000',
    CPHONE_SFU_WORKERS: '3',
    CPHONE_STREAM_CONTROL_SEATS: '2',
    CPHONE_STREAM_MAX_VIEWERS: '25',
    CPHONE_STREAM_ROOM_GRACE_MS: '500',
  }).stream;
  assert.deepEqual(
    { ...stream },
    {
      enabled: true,
      bind: '127.0.0.1',
      port: 0,
      publicUrl: 'wss://h12.example.net:443',
      tls: true,
      tlsCertFile: cert,
      tlsKeyFile: cert,
      rtcListenIp: '10.0.0.12',
      rtcAnnouncedAddress: '203.0.113.12',
      rtcPort: 50_000,
      workers: 3,
      controlSeats: 2,
      maxViewers: 25,
      roomGraceMs: 500,
    },
  );
  assert.equal(streamEndpoint(stream, 4443), 'wss://h12.example.net/signal');
  assert.equal(
    streamEndpoint({ ...stream, publicUrl: 'wss://edge.example.net/agents/h12/ws' }, 4443),
    'wss://edge.example.net/agents/h12/ws',
  );
  assert.equal(streamEndpoint({ ...stream, publicUrl: undefined }, 4501), 'wss://127.0.0.1:4501/signal');
  assert.equal(streamEndpoint(loadConfig({ ...base, CPHONE_STREAM: 'off' }).stream, 4443), '');

  // Plain ws on loopback only (the embedded default), for a browser on the same machine.
  const plain = loadConfig({ ...base, CPHONE_STREAM_BIND: '127.0.0.1', CPHONE_STREAM_TLS: 'off' }).stream;
  assert.equal(plain.tls, false);
  assert.equal(streamEndpoint(plain, 4501), 'ws://127.0.0.1:4501/signal');
  assert.equal(
    loadConfig({ ...base, CPHONE_STREAM_BIND: '::1', CPHONE_STREAM_TLS: 'off' }).stream.tls,
    false,
  );
  rejects({ CPHONE_STREAM_TLS: 'off' }, 'CPHONE_STREAM_TLS', 'off');
  rejects({ CPHONE_STREAM_BIND: '10.0.0.12', CPHONE_STREAM_TLS: 'off' }, 'CPHONE_STREAM_TLS', 'off');
  rejects({ CPHONE_STREAM_TLS: 'plain' }, 'CPHONE_STREAM_TLS', 'plain');
  rejects(
    { CPHONE_STREAM_BIND: '127.0.0.1', CPHONE_STREAM_TLS: 'off', CPHONE_STREAM_PUBLIC_URL: 'wss://h:1' },
    'CPHONE_STREAM_PUBLIC_URL',
    'wss://h:1',
  );
  rejects({ CPHONE_STREAM: 'yes' }, 'CPHONE_STREAM', 'yes');
  rejects({ CPHONE_STREAM_PUBLIC_URL: 'https://h12:443' }, 'CPHONE_STREAM_PUBLIC_URL', 'https://h12:443');
  rejects({ CPHONE_STREAM_BIND: '300.1.1.1' }, 'CPHONE_STREAM_BIND', '300.1.1.1');
  rejects({ CPHONE_STREAM_TLS_CERT: cert }, 'CPHONE_STREAM_TLS_KEY', '');
  rejects({ CPHONE_RTC_PORT: '65535', CPHONE_SFU_WORKERS: '2' }, 'CPHONE_RTC_PORT', '65535');
  rejects({ CPHONE_STREAM_MAX_VIEWERS: '0' }, 'CPHONE_STREAM_MAX_VIEWERS', '0');
  rejects({ CPHONE_RTC_ANNOUNCED_ADDRESS: 'a b' }, 'CPHONE_RTC_ANNOUNCED_ADDRESS', 'a b');
});

test('network isolation settings: on by default, every variable read, bad values named', () => {
  assert.deepEqual(loadConfig(base).network, { enabled: true, recheckMs: 10_000, httpProxy: undefined });
  assert.deepEqual(
    loadConfig({
      ...base,
      CPHONE_NETWORK_ISOLATION: 'off',
      CPHONE_NETWORK_RECHECK_MS: '2500',
      CPHONE_PHONE_HTTP_PROXY: '10.0.0.5:3128',
    }).network,
    { enabled: false, recheckMs: 2500, httpProxy: { host: '10.0.0.5', port: 3128 } },
  );
  rejects({ CPHONE_NETWORK_ISOLATION: 'yes' }, 'CPHONE_NETWORK_ISOLATION', 'yes');
  rejects({ CPHONE_NETWORK_RECHECK_MS: '5' }, 'CPHONE_NETWORK_RECHECK_MS', '5');
  rejects({ CPHONE_PHONE_HTTP_PROXY: 'proxy.example:3128' }, 'CPHONE_PHONE_HTTP_PROXY', 'proxy.example:3128');
  rejects({ CPHONE_PHONE_HTTP_PROXY: '10.0.0.300:3128' }, 'CPHONE_PHONE_HTTP_PROXY', '10.0.0.300:3128');
  rejects({ CPHONE_PHONE_HTTP_PROXY: '10.0.0.5:0' }, 'CPHONE_PHONE_HTTP_PROXY', '10.0.0.5:0');
});
