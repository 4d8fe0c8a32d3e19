// Rotating the agent gateway's CA and server certificate with agents connected (the runbook's
// "rotate" section, step by step): a real control plane serving the operator's certificate files
// and a real agent (sim runtime) over TLS on loopback. The agent's stream stays up through every
// step (no attempt ends, heartbeats keep arriving), new handshakes get the new certificate, and
// the agent, started trusting the old CA alone, reconnects through the new one after its CA file
// became the old+new bundle.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import { createClient } from '@connectrpc/connect';
import { bearerTransport, startTestControlPlane, type TestControlPlane } from '@cphone/control-plane/testing';
import { type Agent, loadConfig as loadAgentConfig, startAgent } from '@cphone/host-agent';
import {
  createCertificateAuthority,
  HostService,
  issueServerCertificate,
  type PemKeyPair,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';

const silent = pino({ level: 'silent' });
let dir: string;
let plane: TestControlPlane;
let agent: Agent;
let hostId: string;
let oldCa: PemKeyPair;
let oldCert: PemKeyPair;

const files = () => ({
  cert: join(dir, 'gateway', 'tls.crt'),
  key: join(dir, 'gateway', 'tls.key'),
  ca: join(dir, 'gateway', 'ca.crt'),
  agentCa: join(dir, 'agent-ca.pem'),
});

/** Replaces a file in one step (write a sibling, rename over), as a Secret volume or `install` does. */
async function replace(path: string, contents: string): Promise<void> {
  await writeFile(`${path}.new`, contents);
  await rename(`${path}.new`, path);
}

/** The serial number of the certificate the gateway serves to a new handshake trusting `ca`. */
function handshake(ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: plane.plane.grpcPort,
      servername: 'localhost',
      ca,
      ALPNProtocols: ['h2'],
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function attemptsEnded(): Promise<number> {
  const metric = await agent.metrics.sessionAttempts.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}

async function lastHeartbeat(): Promise<number> {
  const row = await plane.plane.deps.db
    .selectFrom('host')
    .select('last_heartbeat_time')
    .where('id', '=', hostId)
    .executeTakeFirstOrThrow();
  return row.last_heartbeat_time ? new Date(row.last_heartbeat_time).getTime() : 0;
}

const serial = (cert: string) => new X509Certificate(cert).serialNumber;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cphone-rotate-'));
  const f = files();
  await mkdir(join(dir, 'gateway'));
  oldCa = await createCertificateAuthority('cphone agent CA 1');
  oldCert = await issueServerCertificate(oldCa, { commonName: 'gateway 1', dnsNames: ['localhost'] });
  await writeFile(f.cert, oldCert.cert);
  await writeFile(f.key, oldCert.key);
  await writeFile(f.ca, oldCa.cert);
  await writeFile(f.agentCa, oldCa.cert);
  plane = await startTestControlPlane({
    grpcHost: '127.0.0.1',
    tlsCertFile: f.cert,
    tlsKeyFile: f.key,
    tlsCaFile: f.ca,
    tlsReloadIntervalMs: 100,
    heartbeatIntervalMs: 200,
  });
  const token = plane.plane.bootstrapToken ?? '';
  const hosts = createClient(HostService, bearerTransport(plane.plane.httpUrl, token));
  const enrolled = await hosts.enrollHost({ name: 'rotating', arch: 'arm64' });
  hostId = enrolled.host?.hostId ?? '';
  agent = await startAgent(
    loadAgentConfig({
      CPHONE_HOST_ID: hostId,
      CPHONE_HOST_CREDENTIAL: enrolled.credential,
      CPHONE_CONTROL_PLANE: `localhost:${plane.plane.grpcPort}`,
      CPHONE_CA_FILE: f.agentCa,
      CPHONE_RUNTIME: 'sim',
      CPHONE_RUNTIME_SCOPE: `rotate-${hostId}`,
      CPHONE_AGENT_DATA_DIR: join(dir, 'agent'),
      CPHONE_AGENT_HTTP_PORT: '0',
      CPHONE_STREAM: 'off',
      CPHONE_ARCH: 'arm64',
      CPHONE_LOG_LEVEL: 'silent',
    }),
    { logger: silent, session: { backoff: { baseMs: 50, capMs: 200 } } },
  );
  await waitFor('the agent connected', () => agent.session.connected, Boolean);
});

after(async () => {
  await agent?.close();
  await plane?.close();
  await rm(dir, { recursive: true, force: true });
});

test('the gateway CA and certificate rotate with no agent stream dropped', async () => {
  const f = files();
  assert.equal((await handshake(oldCa.cert)).serialNumber, serial(oldCert.cert));
  assert.equal(await attemptsEnded(), 0);

  // 1. A new CA; agents trust the bundle old+new (their stream is not touched).
  const newCa = await createCertificateAuthority('cphone agent CA 2');
  const bundle = `${oldCa.cert.trim()}\n${newCa.cert.trim()}\n`;
  await replace(f.agentCa, bundle);
  // 2. The gateway's CA file (what enrollment hands out) becomes the bundle too.
  await replace(f.ca, bundle);
  await waitFor(
    'the gateway took the CA bundle',
    () => plane.plane.deps.gateway.caPem,
    (pem) => pem === bundle,
  );

  // 3. The new server certificate, from the new CA: key first, then the certificate. The half-done
  // state (new key, old certificate) is refused and the old pair keeps serving.
  const newCert = await issueServerCertificate(newCa, { commonName: 'gateway 2', dnsNames: ['localhost'] });
  await replace(f.key, newCert.key);
  assert.equal(await plane.plane.reloadTls(), false, 'a mismatched pair is not taken');
  assert.equal((await handshake(oldCa.cert)).serialNumber, serial(oldCert.cert));
  await replace(f.cert, newCert.cert);
  const served = await waitFor(
    'new handshakes get the new certificate',
    () => handshake(bundle),
    (peer) => peer.serialNumber === serial(newCert.cert),
  );
  assert.match(String(served.issuer.CN), /CA 2/);
  await assert.rejects(
    handshake(oldCa.cert),
    /self.signed|unable to verify|certificate/i,
    'the old CA alone no longer verifies it',
  );

  // The stream that was up before stays up, on the same attempt, and keeps carrying heartbeats.
  const since = Date.now();
  await waitFor('a heartbeat after the rotation', lastHeartbeat, (t) => t > since);
  assert.equal(await attemptsEnded(), 0, 'no stream ended');
  assert.equal(agent.session.connected, true);
  assert.deepEqual(plane.plane.deps.gateway.connectedHosts(), [hostId]);

  // A reconnect (a replica restarting, say) verifies the new certificate with the reloaded bundle.
  plane.plane.deps.gateway.disconnect(hostId, 'test: reconnect after the rotation');
  await waitFor('the stream ended once', attemptsEnded, (n) => n === 1);
  await waitFor('the agent reconnected', () => agent.session.connected, Boolean);
  const welcomed = await agent.metrics.sessionAttempts.get();
  assert.equal(welcomed.values.find((v) => v.labels.outcome === 'rejected')?.value, 1);
  assert.deepEqual(plane.plane.deps.gateway.connectedHosts(), [hostId]);

  // 4. Later, the old CA leaves the bundles; the agent keeps verifying the new certificate.
  await replace(f.agentCa, newCa.cert);
  await replace(f.ca, newCa.cert);
  await waitFor(
    'the gateway dropped the old CA',
    () => plane.plane.deps.gateway.caPem,
    (pem) => pem === newCa.cert,
  );
  plane.plane.deps.gateway.disconnect(hostId, 'test: reconnect on the new CA alone');
  await waitFor('the stream ended again', attemptsEnded, (n) => n === 2);
  await waitFor('the agent reconnected on the new CA alone', () => agent.session.connected, Boolean);
});
