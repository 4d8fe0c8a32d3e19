// The public API on one port in the three protocols Connect promises, called by buf's own client
// (buf curl) with the schema from the repository's proto module, so no reflection is needed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { DeviceService, ImageService } from '@cphone/proto';
import { bearerTransport } from '../api/bearer-transport.js';
import { insertHosts } from '../placement/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const buf = `${root}node_modules/.bin/buf`;
const listDevices = '/cphone.api.v1.DeviceService/ListDevices';

let testPlane: TestControlPlane;
let deviceId: string;

before(async () => {
  testPlane = await startTestControlPlane();
  const { plane } = testPlane;
  const transport = bearerTransport(plane.httpUrl, plane.bootstrapToken);
  await insertHosts(plane.deps.db, [{ id: 'proto-host', labels: { pool: 'proto' }, connected: false }]);
  await createClient(ImageService, transport).createImage({
    imageId: 'img-proto',
    image: { displayName: 'Android', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  const { devices } = await createClient(DeviceService, transport).batchCreateDevices({
    requests: [
      {
        spec: { imageId: 'img-proto', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 8 },
        placement: { nodeSelector: { pool: 'proto' } },
      },
    ],
  });
  deviceId = devices[0]?.deviceId ?? '';
  assert.ok(deviceId);
});

after(() => testPlane.close());

interface Curl {
  code: number;
  stdout: string;
  stderr: string;
}

function bufCurl(protocol: string, token: string | undefined, verbose = false): Promise<Curl> {
  const args = ['curl', '--schema', root, '--protocol', protocol, '--data', '{}'];
  if (verbose) args.push('--verbose');
  if (protocol === 'grpc') args.push('--http2-prior-knowledge');
  if (token) args.push('--header', `Authorization: Bearer ${token}`);
  args.push(`${testPlane.plane.httpUrl}${listDevices}`);
  return new Promise((resolve) => {
    execFile(buf, args, { cwd: root, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

for (const protocol of ['connect', 'grpcweb', 'grpc']) {
  test(`buf curl --protocol ${protocol} lists the devices`, async () => {
    const result = await bufCurl(protocol, testPlane.plane.bootstrapToken);
    assert.equal(result.code, 0, result.stderr);
    const response = JSON.parse(result.stdout) as { devices?: { deviceId?: string }[] };
    assert.deepEqual(
      response.devices?.map((d) => d.deviceId),
      [deviceId],
    );
  });
}

test('an unauthenticated gRPC call ends with status UNAUTHENTICATED (16)', async () => {
  const result = await bufCurl('grpc', undefined, true);
  assert.notEqual(result.code, 0);
  // The status rides in the HTTP/2 trailers, as gRPC requires.
  assert.match(result.stderr, /< \(#1\) Grpc-Status: 16\n/);
  assert.match(result.stderr, /"code": "unauthenticated"/);
});
