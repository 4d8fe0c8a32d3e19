// The public API on one port in the three protocols Connect promises, called by buf's own client
// (buf curl) with the schema from the repository's proto module, so no reflection is needed: in
// cleartext (HTTP/1.1 and h2c, the embedded default) and over TLS (HTTP/2 and HTTP/1.1 by ALPN).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import {
  createCertificateAuthority,
  DeviceService,
  ImageService,
  issueServerCertificate,
} from '@cphone/proto';
import { bearerTransport } from '../api/bearer-transport.js';
import { insertHosts } from '../placement/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const buf = `${root}node_modules/.bin/buf`;
const listDevices = '/cphone.api.v1.DeviceService/ListDevices';

let testPlane: TestControlPlane;
let tlsPlane: TestControlPlane;
let tlsDir: string;
let caFile: string;
let deviceId: string;
let tlsDeviceId: string;

async function withDevice(testPlane: TestControlPlane, ca?: string): Promise<string> {
  const { plane } = testPlane;
  const transport = bearerTransport(plane.httpUrl, plane.bootstrapToken, { ca });
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
  const id = devices[0]?.deviceId ?? '';
  assert.ok(id);
  return id;
}

before(async () => {
  testPlane = await startTestControlPlane();
  deviceId = await withDevice(testPlane);
  tlsDir = await mkdtemp(join(tmpdir(), 'cphone-api-tls-'));
  const ca = await createCertificateAuthority('cphone test API CA');
  const leaf = await issueServerCertificate(ca, { commonName: 'localhost' });
  caFile = join(tlsDir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  await writeFile(join(tlsDir, 'server.pem'), leaf.cert);
  await writeFile(join(tlsDir, 'server-key.pem'), leaf.key, { mode: 0o600 });
  tlsPlane = await startTestControlPlane({
    httpTlsCertFile: join(tlsDir, 'server.pem'),
    httpTlsKeyFile: join(tlsDir, 'server-key.pem'),
  });
  tlsDeviceId = await withDevice(tlsPlane, ca.cert);
});

after(async () => {
  await testPlane?.close();
  await tlsPlane?.close();
  await rm(tlsDir, { recursive: true, force: true });
});

interface Curl {
  code: number;
  stdout: string;
  stderr: string;
}

function bufCurl(
  protocol: string,
  token: string | undefined,
  { verbose = false, plane = testPlane }: { verbose?: boolean; plane?: TestControlPlane } = {},
): Promise<Curl> {
  const args = ['curl', '--schema', root, '--protocol', protocol, '--data', '{}'];
  if (verbose) args.push('--verbose');
  const tls = plane.plane.httpUrl.startsWith('https:');
  // Over TLS, ALPN agrees on HTTP/2 for gRPC; in cleartext the client must know it beforehand.
  if (tls) args.push('--cacert', caFile);
  else if (protocol === 'grpc') args.push('--http2-prior-knowledge');
  if (token) args.push('--header', `Authorization: Bearer ${token}`);
  args.push(`${plane.plane.httpUrl}${listDevices}`);
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

for (const protocol of ['connect', 'grpcweb', 'grpc']) {
  test(`over TLS, buf curl --protocol ${protocol} lists the devices`, async () => {
    assert.match(tlsPlane.plane.httpUrl, /^https:/);
    const result = await bufCurl(protocol, tlsPlane.plane.bootstrapToken, { plane: tlsPlane, verbose: true });
    assert.equal(result.code, 0, result.stderr);
    // The server offers HTTP/2 by ALPN (gRPC needs it; the other two ride it too).
    assert.match(result.stderr, /ALPN: server accepted h2/);
    assert.match(result.stderr, /< \(#1\) HTTP\/2\.0 200/);
    const response = JSON.parse(result.stdout) as { devices?: { deviceId?: string }[] };
    assert.deepEqual(
      response.devices?.map((d) => d.deviceId),
      [tlsDeviceId],
    );
  });
}

test('over TLS, a client that does not trust the CA is refused', async () => {
  const args = ['curl', '--schema', root, '--protocol', 'connect', '--data', '{}'];
  const result = await new Promise<Curl>((resolve) => {
    execFile(
      buf,
      [...args, `${tlsPlane.plane.httpUrl}${listDevices}`],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? -1 : 0, stdout, stderr }),
    );
  });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /certificate/i);
});

test('an unauthenticated gRPC call ends with status UNAUTHENTICATED (16)', async () => {
  const result = await bufCurl('grpc', undefined, { verbose: true });
  assert.notEqual(result.code, 0);
  // The status rides in the HTTP/2 trailers, as gRPC requires.
  assert.match(result.stderr, /< \(#1\) Grpc-Status: 16\n/);
  assert.match(result.stderr, /"code": "unauthenticated"/);
});
