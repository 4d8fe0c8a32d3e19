import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { agentv1 } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { createSimRuntime } from './runtime/index.js';
import { TestControlPlane } from './session/testing.js';

const main = new URL('./main.ts', import.meta.url).pathname;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function agentProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    env: { PATH: process.env.PATH ?? '', CPHONE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, stderr: () => stderr };
}

test('a bad setting stops the daemon at once, naming the variable and the value', async () => {
  const { child, stderr } = agentProcess({
    CPHONE_HOST_ID: 'h-1',
    CPHONE_HOST_CREDENTIAL: 'x',
    CPHONE_RUNTIME: 'lxc',
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(stderr(), /CPHONE_RUNTIME="lxc"/);
});

test('SIGTERM closes the stream and exits 0; the phones stay recorded as running and come back', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-main-'));
  dirs.push(dataDir);
  const cp = await TestControlPlane.create({
    desired: () =>
      create(agentv1.DesiredDevicesSchema, {
        revision: 1n,
        devices: [
          {
            deviceId: 'd-1',
            tenantId: 't-1',
            specRevision: 1n,
            powerState: agentv1.PowerState.RUNNING,
            spec: { imageRef: 'cphone/virtual-phone', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
          },
        ],
      }),
  });
  after(() => cp.stop());
  const caFile = join(dataDir, 'ca.pem');
  await writeFile(caFile, cp.ca.cert);
  const { child, stderr } = agentProcess({
    CPHONE_HOST_ID: 'h-1',
    CPHONE_HOST_CREDENTIAL: 'secret',
    CPHONE_CONTROL_PLANE: `127.0.0.1:${cp.port}`,
    CPHONE_CA_FILE: caFile,
    CPHONE_RUNTIME: 'sim',
    CPHONE_AGENT_DATA_DIR: dataDir,
    CPHONE_AGENT_HTTP_PORT: '0',
    CPHONE_STREAM_BIND: '127.0.0.1',
    CPHONE_STREAM_PORT: '0',
    CPHONE_RTC_LISTEN_IP: '127.0.0.1',
    CPHONE_RTC_PORT: '0',
    CPHONE_SFU_WORKERS: '1',
  });
  await waitFor(
    'd-1 RUNNING',
    () =>
      cp
        .of('deviceStatus')
        .some((s) => s.device?.deviceId === 'd-1' && s.device.state === agentv1.DeviceState.RUNNING),
    Boolean,
  );
  assert.equal(cp.streams, 1);
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, stderr());
  await waitFor(
    'stream closed',
    () => cp.streams,
    (v) => v === 0,
  );

  // The next agent process finds the phone running again, exactly once.
  const sim = await createSimRuntime({ dataDir: join(dataDir, 'sim') });
  try {
    assert.deepEqual(
      (await sim.list()).map((d) => [d.deviceId, d.state]),
      [['d-1', 'running']],
    );
  } finally {
    await sim.close();
  }
});
