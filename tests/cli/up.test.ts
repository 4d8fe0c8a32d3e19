// `npm start` is `cphone up`: the embedded default must come up on a fresh data dir with running
// phones that answer ADB, and come back with the same host and phones on a second start.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startEmbedded } from '@cphone/cli';
import { connectAdbTcp } from '@cphone/host-agent';
import { ensureBundle, runCli } from './harness.js';

const root = await mkdtemp(join(tmpdir(), 'cphone-up-'));
await ensureBundle();
after(() => rm(root, { recursive: true, force: true }));

const env = {
  CPHONE_DATA_DIR: join(root, 'control-plane'),
  CPHONE_AGENT_DATA_DIR: join(root, 'agent'),
  CPHONE_HTTP_PORT: '0',
  CPHONE_GRPC_PORT: '0',
  CPHONE_AGENT_HTTP_PORT: '0',
  CPHONE_LOG_LEVEL: 'silent',
  CPHONE_SIM_BOOT_DELAY_MS: '100',
  CPHONE_STREAM_PORT: '0',
  CPHONE_RTC_PORT: '0',
  XDG_CONFIG_HOME: join(root, 'config'),
};

function phoneIds(lines: string[]): string[] {
  return lines.map((l) => l.split(/\s+/)[0] ?? '').sort();
}

test('the embedded default starts on PGlite with running phones, and restarts onto the same ones', async () => {
  const first = await startEmbedded(env);
  let ids: string[];
  try {
    assert.equal(first.plane.deps.config.databaseUrl, undefined, 'embedded default is PGlite');
    assert.equal((await fetch(`${first.plane.httpUrl}/healthz`)).status, 200);
    assert.equal(first.phones.length, 3);
    for (const line of first.phones) assert.match(line, /^dev_\S+ {2}running {2}adb 127\.0\.0\.1:\d+/);
    // A phone answers a real ADB handshake on the printed address.
    const port = Number(/adb 127\.0\.0\.1:(\d+)/.exec(first.phones[0] ?? '')?.[1]);
    const adb = await connectAdbTcp('127.0.0.1', port);
    adb.close();
    assert.equal((await stat(join(root, 'agent', 'host-credential'))).mode & 0o777, 0o600);
    // A test player link per phone, on the agent's stream endpoint, which serves the page.
    assert.equal(first.players.length, 3);
    const link = new URL(first.players[0]?.split(/\s+/)[1] ?? '');
    assert.match(link.hash, /^#token=ey/);
    // Plain HTTP on loopback (CPHONE_STREAM_TLS=off): a browser here plays it with no certificate.
    assert.equal(link.protocol, 'http:');
    const page = await (await fetch(link)).text();
    assert.match(page, /cphoneViewer\s*\.start/);
    // The console at /, and its first admin signs in with the password of the first start.
    const index = await fetch(`${first.plane.httpUrl}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await index.text(), /<cp-app>/);
    assert.equal((await fetch(`${first.plane.httpUrl}/cphone-player.js`)).status, 200);
    const password = await readFile(join(root, 'control-plane', 'bootstrap-admin-password'), 'utf8');
    assert.equal(password.trim(), first.plane.bootstrapPassword);
    const signIn = await fetch(`${first.plane.httpUrl}/cphone.api.v1.UserService/SignIn`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'admin@localhost', password: password.trim() }),
    });
    assert.equal(signIn.status, 200, await signIn.clone().text());
    assert.match(signIn.headers.get('set-cookie') ?? '', /^cphone_session=.*HttpOnly/);
    ids = phoneIds(first.phones);
    // The CLI works with no set-up: the start added the context "embedded" and made it current.
    assert.equal(first.context, 'embedded');
    const listed = await runCli(['hosts', 'get', '-o', 'name'], { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^local-\S+\n$/);
  } finally {
    await first.close();
  }
  const hostId = (await readFile(join(root, 'agent', 'host-id'), 'utf8')).trim();
  const second = await startEmbedded(env);
  try {
    assert.deepEqual(phoneIds(second.phones), ids, 'the same phones, none added');
    for (const line of second.phones) assert.match(line, / running /);
    const hosts = await second.plane.deps.db.selectFrom('host').select('id').execute();
    assert.deepEqual(
      hosts.map((h) => h.id),
      [hostId],
      'the same host, not a second enrollment',
    );
  } finally {
    await second.close();
  }
});

test('a port already in use is one sentence naming the setting that moves it', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as AddressInfo;
  try {
    await assert.rejects(
      startEmbedded({
        ...env,
        CPHONE_DATA_DIR: join(root, 'busy', 'control-plane'),
        CPHONE_AGENT_DATA_DIR: join(root, 'busy', 'agent'),
        CPHONE_HTTP_PORT: String(port),
      }),
      (e: Error) => {
        assert.equal(
          e.message,
          `port ${port} on 127.0.0.1 is already in use (another cphone up, or another program): stop it, or start with CPHONE_HTTP_PORT=<free port> npm start`,
        );
        return true;
      },
    );
  } finally {
    taken.close();
  }
});
