import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { addGrpcService, createGrpcClient } from './grpc.js';
import { agentv1 } from './index.js';
import { createCertificateAuthority, issueServerCertificate, type PemKeyPair } from './tls.js';

let ca: PemKeyPair;
let server: grpc.Server;
let port: number;
const seenMetadata: string[] = [];

before(async () => {
  ca = await createCertificateAuthority('test CA');
  const leaf = await issueServerCertificate(ca, { commonName: 'control-plane' });
  server = new grpc.Server();
  addGrpcService(server, agentv1.AgentService, {
    // A Hello gets a Welcome, each Heartbeat a Ping carrying its seq.
    connect(call) {
      seenMetadata.push(String(call.metadata.get('x-host')[0] ?? ''));
      call.on('data', (message: agentv1.AgentMessage) => {
        if (message.body.case === 'hello') {
          call.write(
            create(agentv1.ControlMessageSchema, {
              body: { case: 'welcome', value: { hostId: message.body.value.hostId } },
            }),
          );
        } else if (message.body.case === 'heartbeat') {
          // Plain init objects are accepted as well as created messages.
          call.write({ body: { case: 'ping', value: { nonce: message.body.value.seq } } } as never);
        }
      });
      call.on('end', () => call.end());
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(Buffer.from(ca.cert), [
        { cert_chain: Buffer.from(leaf.cert), private_key: Buffer.from(leaf.key) },
      ]),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
});

after(() => server.forceShutdown());

test('a bidi stream runs over TLS on loopback with protobuf-es messages', async () => {
  const client = createGrpcClient(
    agentv1.AgentService,
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(Buffer.from(ca.cert)),
  );
  const metadata = new grpc.Metadata();
  metadata.set('x-host', 'h-1');
  const call = client.connect(metadata);
  const received: agentv1.ControlMessage[] = [];
  call.on('data', (message: agentv1.ControlMessage) => received.push(message));
  call.write(
    create(agentv1.AgentMessageSchema, {
      body: { case: 'hello', value: { hostId: 'h-1', protocolVersion: 1 } },
    }),
  );
  for (let seq = 1n; seq <= 3n; seq++) {
    call.write(create(agentv1.AgentMessageSchema, { body: { case: 'heartbeat', value: { seq } } }));
  }
  call.end();
  await once(call, 'end');
  client.close();

  assert.deepEqual(seenMetadata, ['h-1']);
  assert.equal(received.length, 4);
  const [welcome, ...pings] = received;
  assert.equal(welcome?.body.case, 'welcome');
  assert.equal(welcome?.body.case === 'welcome' && welcome.body.value.hostId, 'h-1');
  assert.deepEqual(
    pings.map((m) => (m.body.case === 'ping' ? m.body.value.nonce : undefined)),
    [1n, 2n, 3n],
  );
});

test('a client that does not trust the CA is refused', async () => {
  const other = await createCertificateAuthority('other CA');
  const client = createGrpcClient(
    agentv1.AgentService,
    `127.0.0.1:${port}`,
    grpc.credentials.createSsl(Buffer.from(other.cert)),
  );
  const call = client.connect();
  const [error] = (await once(call, 'error')) as [grpc.ServiceError];
  client.close();
  assert.equal(error.code, grpc.status.UNAVAILABLE);
});
