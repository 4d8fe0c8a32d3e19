// The sfu through its signaling protocol, from Node: joins, seats, refusals, revocations,
// reconnects, worker loss, and that everything a session or room made is closed again.
import * as assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { StreamTokenClaims } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import { CloseCode, DeviceUnavailableError } from './close-codes.js';
import { hostTimeMs } from './latency.js';
import type { ReportResult } from './signaling/protocol.js';
import {
  FixtureFeeds,
  SignalClient,
  startMediasoupCensus,
  startTestSfu,
  type TestSfu,
} from './testing/index.js';

const census = startMediasoupCensus();
after(() => census.stop());

type Claims = Partial<StreamTokenClaims> & { deviceId: string };

/** Joins and sets up what a player would: receive transport, both consumers, and input for CONTROL. */
async function viewer(t: TestSfu, claims: Claims, options: { media?: boolean } = {}) {
  const client = await SignalClient.connect(t.url);
  const joined = await client.request<{ sessionId: string; routerRtpCapabilities: unknown; rights: string }>(
    'join',
    { token: await t.tokens.sign(claims) },
  );
  if (options.media ?? true) {
    const rtpCapabilities = joined.routerRtpCapabilities;
    await client.request('createTransport', { direction: 'recv' });
    for (const kind of ['video', 'audio']) {
      const { consumerId } = await client.request<{ consumerId: string }>('consume', {
        kind,
        rtpCapabilities,
      });
      await client.request('resume', { consumerId });
    }
    if (joined.rights === 'control') {
      await client.request('consumeData');
      const send = await client.request<{ transportId: string }>('createTransport', { direction: 'send' });
      await client.request('produceData', {
        transportId: send.transportId,
        label: 'input',
        sctpStreamParameters: { streamId: 0, ordered: true },
      });
    }
  }
  return { client, joined };
}

async function refusal(t: TestSfu, token: string) {
  const client = await SignalClient.connect(t.url);
  await assert.rejects(client.request('join', { token }));
  return client.closed;
}

const roomObjects = () => {
  const { workers, webRtcServers, ...rest } = census.counts();
  return rest;
};
const nothingLeft = {
  routers: 0,
  transports: 0,
  producers: 0,
  consumers: 0,
  dataProducers: 0,
  dataConsumers: 0,
};

test('50 joins and leaves leave no router, transport, producer or consumer behind after the grace', async () => {
  const t = await startTestSfu({ graceMs: 200, resumeWindowMs: 100, maxViewers: 100 });
  try {
    for (let round = 0; round < 10; round++) {
      const viewers = await Promise.all([
        viewer(t, { deviceId: 'phone-a', rights: 'control' }),
        ...Array.from({ length: 3 }, () => viewer(t, { deviceId: 'phone-a' })),
        viewer(t, { deviceId: `phone-${round % 3}` }),
      ]);
      assert.equal(t.feeds.live.length >= 2, true);
      await Promise.all(
        viewers.map(async ({ client }, i) => {
          // Half leave, half just drop: both give the seat back (a drop after the resume window).
          if (i % 2 === 0) client.socket.send(JSON.stringify({ id: 99, type: 'leave' }));
          else client.close();
          await client.closed;
        }),
      );
    }
    const joined = t.events.filter((e) => e.type === 'joined').length;
    assert.equal(joined, 50);
    await waitFor(
      'every session to end',
      () => t.sfu.sessions(),
      (s) => s.length === 0,
      { timeoutMs: 20_000 },
    );
    await waitFor(
      'every room to close',
      () => roomObjects(),
      (c) => c.routers === 0,
    );
    assert.deepEqual(roomObjects(), nothingLeft);
    assert.deepEqual(t.sfu.rooms(), []);
    assert.equal(t.feeds.live.length, 0, 'every feed closed');
    const metrics = await t.sfu.registry.metrics();
    assert.doesNotMatch(metrics, /cphone_sfu_viewers\{/, 'no seat series left');
    assert.match(metrics, /cphone_sfu_rooms 0/);
    assert.equal(t.events.filter((e) => e.type === 'ended').length, 50);
    assert.ok(census.made.consumers >= 100 && census.made.dataConsumers >= 20, 'the media really was set up');
  } finally {
    await t.close();
  }
  assert.deepEqual(census.counts(), { ...nothingLeft, workers: 0, webRtcServers: 0 });
});

test('a bad, foreign or expired token is refused with 4401 and its reason', async () => {
  const t = await startTestSfu({ resumeWindowMs: 100 });
  try {
    assert.deepEqual(await refusal(t, 'not-a-token'), {
      code: CloseCode.BAD_TOKEN,
      reason: 'BAD_TOKEN: the stream token is malformed',
    });
    const other = await startTestSfu();
    try {
      const foreign = await other.tokens.sign({ deviceId: 'p' });
      assert.equal((await refusal(t, foreign)).code, CloseCode.BAD_TOKEN);
    } finally {
      await other.close();
    }
    const expired = await t.tokens.sign({ deviceId: 'p', expiresAt: Math.floor(Date.now() / 1000) - 10 });
    assert.deepEqual(await refusal(t, expired), {
      code: CloseCode.BAD_TOKEN,
      reason: 'BAD_TOKEN: the stream token has expired',
    });
    assert.deepEqual(t.sfu.sessions(), []);
  } finally {
    await t.close();
  }
});

test('a malformed, unknown, out-of-order, binary or oversize message closes only its own socket', async () => {
  const t = await startTestSfu();
  try {
    const bystander = await viewer(t, { deviceId: 'p' });
    const cases: [string, (c: SignalClient) => void, number, RegExp][] = [
      ['not JSON', (c) => c.sendRaw('{nope'), CloseCode.BAD_MESSAGE, /JSON/],
      ['unknown type', (c) => c.sendRaw('{"id":1,"type":"dance"}'), CloseCode.BAD_MESSAGE, /type/],
      [
        'consume before a transport',
        (c) => c.sendRaw('{"id":1,"type":"consume","kind":"video","rtpCapabilities":{}}'),
        CloseCode.BAD_MESSAGE,
        /transport first/,
      ],
      ['binary', (c) => c.sendRaw(Buffer.from([1, 2, 3])), CloseCode.BAD_MESSAGE, /text/],
      ['oversize', (c) => c.sendRaw('x'.repeat(70 * 1024)), CloseCode.BAD_MESSAGE, /at most 65536 bytes/],
      ['far oversize', (c) => c.sendRaw('x'.repeat(300 * 1024)), CloseCode.TOO_BIG, /^$/],
      [
        'a second join',
        (c) => c.sendRaw('{"id":1,"type":"join","token":"x"}'),
        CloseCode.BAD_MESSAGE,
        /join/,
      ],
    ];
    for (const [name, send, code, reason] of cases) {
      const { client } = await viewer(t, { deviceId: 'p' }, { media: false });
      send(client);
      const closed = await client.closed;
      assert.equal(closed.code, code, name);
      assert.match(closed.reason, reason, name);
    }
    const { client } = await viewer(t, { deviceId: 'p' }, { media: false });
    await client.request('createTransport', { direction: 'recv' });
    client.sendRaw('{"id":2,"type":"connectTransport","transportId":"nope","dtlsParameters":{}}');
    assert.equal((await client.closed).code, CloseCode.BAD_MESSAGE);

    assert.equal(bystander.client.closeInfo, undefined, 'the other viewer is untouched');
    const stats = await bystander.client.request('stats');
    assert.equal(typeof stats.bitrateBps, 'number');
    assert.equal(t.sfu.sessions().length, 1);
  } finally {
    await t.close();
  }
});

test('seats: VIEW sessions up to the cap, one CONTROL seat; over the cap the join is refused with 4409', async () => {
  const t = await startTestSfu({ maxViewers: 2 });
  try {
    await viewer(t, { deviceId: 'p' }, { media: false });
    const second = await viewer(t, { deviceId: 'p' }, { media: false });
    assert.deepEqual(await refusal(t, await t.tokens.sign({ deviceId: 'p' })), {
      code: CloseCode.FULL,
      reason: 'FULL: this phone already has 2 viewers',
    });
    await viewer(t, { deviceId: 'other' }, { media: false });
    const controller = await viewer(t, { deviceId: 'p', rights: 'control' }, { media: false });
    assert.deepEqual(await refusal(t, await t.tokens.sign({ deviceId: 'p', rights: 'control' })), {
      code: CloseCode.FULL,
      reason: 'FULL: someone else is controlling this phone',
    });
    second.client.sendRaw('{"id":9,"type":"leave"}');
    assert.equal((await second.client.closed).code, CloseCode.NORMAL);
    await viewer(t, { deviceId: 'p' }, { media: false });
    controller.client.sendRaw('{"id":9,"type":"leave"}');
    await controller.client.closed;
    await viewer(t, { deviceId: 'p', rights: 'control' }, { media: false });
    assert.deepEqual(
      t.events.filter((e) => e.type === 'ended').map((e) => e.endReason),
      ['LEFT', 'LEFT'],
    );
  } finally {
    await t.close();
  }
});

test('a VIEW session asking for input is closed with 4403', async () => {
  const t = await startTestSfu();
  try {
    const { client } = await viewer(t, { deviceId: 'p' });
    await assert.rejects(client.request('createTransport', { direction: 'send' }));
    assert.deepEqual(await client.closed, {
      code: CloseCode.FORBIDDEN,
      reason: 'FORBIDDEN: this session may watch the phone, not control it',
    });
    const other = await viewer(t, { deviceId: 'p' });
    await assert.rejects(other.client.request('consumeData'));
    assert.equal((await other.client.closed).code, CloseCode.FORBIDDEN);
    await waitFor(
      'the sessions to end',
      () => t.events.filter((e) => e.type === 'ended'),
      (e) => e.length === 2,
    );
  } finally {
    await t.close();
  }
});

test('revoke closes the matching sessions at once with the reason; closeDevice closes the room', async () => {
  const t = await startTestSfu();
  try {
    const a = await viewer(t, { deviceId: 'p', tenantId: 'suspended' });
    const b = await viewer(t, { deviceId: 'q', tenantId: 'suspended', rights: 'control' });
    const c = await viewer(t, { deviceId: 'p', tenantId: 'fine' });
    const started = Date.now();
    assert.equal(t.sfu.revoke({ tenantId: 'suspended' }, 'TENANT_SUSPENDED', 'the account is suspended'), 2);
    for (const { client } of [a, b]) {
      assert.deepEqual(await client.closed, {
        code: CloseCode.REVOKED,
        reason: 'TENANT_SUSPENDED: the account is suspended',
      });
    }
    assert.ok(Date.now() - started < 1000, 'within a second');
    assert.equal(c.client.closeInfo, undefined);
    assert.deepEqual(
      t.sfu.sessions().map((s) => s.sessionId),
      [c.joined.sessionId],
    );
    assert.equal(t.sfu.revoke({ sessionId: 'nobody' }, 'REVOKED', 'x'), 0);

    assert.equal(t.sfu.closeDevice('p', 'DEVICE_STOPPED', 'the phone was stopped'), 1);
    assert.deepEqual(await c.client.closed, {
      code: CloseCode.DEVICE_STOPPED,
      reason: 'DEVICE_STOPPED: the phone was stopped',
    });
    assert.ok(!t.sfu.rooms().includes('p'), 'the room closed without a grace');
    const ended = t.events.filter((e) => e.type === 'ended');
    assert.deepEqual(
      ended.map((e) => [e.deviceId, e.endReason]),
      [
        ['p', 'TENANT_SUSPENDED'],
        ['q', 'TENANT_SUSPENDED'],
        ['p', 'DEVICE_STOPPED'],
      ],
    );
  } finally {
    await t.close();
  }
});

test('a session rejoins with its token: it replaces its old socket, or takes its seat back after a drop', async () => {
  const t = await startTestSfu({ resumeWindowMs: 500, controlSeats: 1 });
  try {
    const token = await t.tokens.sign({ deviceId: 'p', rights: 'control' });
    const first = await SignalClient.connect(t.url);
    const joined = await first.request<{ sessionId: string; resumed: boolean }>('join', { token });
    assert.equal(joined.resumed, false);

    const second = await SignalClient.connect(t.url);
    const again = await second.request<{ resumed: boolean }>('join', { token, sessionId: joined.sessionId });
    assert.equal(again.resumed, true);
    assert.equal((await first.closed).code, CloseCode.REPLACED);

    second.socket.terminate();
    await waitFor(
      'the seat to be held',
      () => t.sfu.sessions(),
      (s) => s.length === 1 && !s[0]!.connected,
    );
    // The seat is still taken for anyone else...
    assert.equal(
      (await refusal(t, await t.tokens.sign({ deviceId: 'p', rights: 'control' }))).code,
      CloseCode.FULL,
    );
    // ...and the session takes it back.
    const third = await SignalClient.connect(t.url);
    assert.equal((await third.request<{ resumed: boolean }>('join', { token })).resumed, true);
    assert.equal(t.sfu.sessions()[0]?.connected, true);
    assert.deepEqual(
      t.events.map((e) => [e.type, e.resumed]),
      [
        ['joined', false],
        ['joined', true],
        ['joined', true],
      ],
    );

    third.socket.terminate();
    const ended = await waitFor(
      'the session to end after the resume window',
      () => t.events.find((e) => e.type === 'ended'),
      (e) => e !== undefined,
    );
    assert.equal(ended.endReason, 'DISCONNECTED');
    assert.deepEqual(t.sfu.sessions(), []);
  } finally {
    await t.close();
  }
});

test('an expired token keeps its open session but cannot rejoin', async () => {
  let clock = Date.now();
  const t = await startTestSfu({ resumeWindowMs: 10_000, now: () => clock });
  try {
    const token = await t.tokens.sign({ deviceId: 'p', expiresAt: Math.floor(clock / 1000) + 60 });
    const { client } = await viewer(t, { deviceId: 'p' }, { media: false });
    const holder = await SignalClient.connect(t.url);
    await holder.request('join', { token });
    clock += 61_000;
    assert.deepEqual(
      await holder.request('report', { fps: 30 }),
      { glassToGlassMs: [] },
      'the open session goes on',
    );
    holder.socket.terminate();
    await waitFor(
      'the seat to be held',
      () => t.sfu.sessions(),
      (s) => s.some((x) => !x.connected),
    );
    assert.deepEqual(await refusal(t, token), {
      code: CloseCode.BAD_TOKEN,
      reason: 'BAD_TOKEN: the stream token has expired',
    });
    assert.equal(client.closeInfo, undefined);
  } finally {
    await t.close();
  }
});

test('a phone that cannot be streamed refuses with 4404; a silent socket is closed with 4408', async () => {
  const feeds = new FixtureFeeds({
    open: (deviceId) => {
      if (deviceId === 'stopped') throw new DeviceUnavailableError('the phone is not running');
    },
  });
  const t = await startTestSfu({ feeds, joinTimeoutMs: 200 });
  try {
    assert.deepEqual(await refusal(t, await t.tokens.sign({ deviceId: 'stopped' })), {
      code: CloseCode.DEVICE_GONE,
      reason: 'DEVICE_GONE: the phone is not running',
    });
    assert.deepEqual(census.counts().routers, 0, 'the half-opened room is gone');
    const silent = await SignalClient.connect(t.url);
    assert.equal((await silent.closed).code, CloseCode.JOIN_TIMEOUT);
  } finally {
    await t.close();
  }
});

test('stats events carry mediasoup figures and the player’s reports', async () => {
  const t = await startTestSfu({ statsIntervalMs: 100 });
  try {
    const { client, joined } = await viewer(t, { deviceId: 'p' });
    await client.request('report', {
      fps: 30,
      framesDecoded: 120,
      jitterBufferMs: 25,
      firstFrameMs: 420,
      glassToGlassMs: [50, 60, 70, 80, 90, 100, 110, 120, 130, 200],
    });
    const stats = await waitFor(
      'a stats event with the report',
      () => t.events.find((e) => e.type === 'stats' && e.stats?.framesDecoded === 120)?.stats,
      (s) => s !== undefined,
    );
    assert.deepEqual(
      [stats.fps, stats.jitterBufferMs, stats.firstFrameMs, stats.glassToGlassP50Ms, stats.glassToGlassP95Ms],
      [30, 25, 420, 90, 200],
    );
    assert.ok(t.events.every((e) => e.sessionId === joined.sessionId && e.tenantId === 'tenant-test'));
    const text = await t.sfu.registry.metrics();
    assert.match(text, /cphone_sfu_viewers\{device_id="p",rights="view"\} 1/);
    assert.match(text, /cphone_sfu_joins_total\{outcome="joined"\} 1/);
    assert.match(text, /cphone_sfu_rooms 1/);
    assert.match(text, /cphone_sfu_workers 1/);
  } finally {
    await t.close();
  }
});

test('presented frames are measured against the phone’s capture times; the ended event keeps the session’s figures', async () => {
  const t = await startTestSfu({ feeds: new FixtureFeeds({ captureDelayMs: 40 }), statsIntervalMs: 60_000 });
  try {
    const { client } = await viewer(t, { deviceId: 'p' });
    const feed = t.feeds.of('p')[0]!;
    const [rtpTimestamp, capturedAt] = await waitFor(
      'a frame sent',
      () => [...feed.captureTimes][0],
      (f) => f !== undefined,
    );
    // A player whose clock is 500 ms ahead, presenting that frame 80 ms after its capture.
    const skew = 500;
    const t0 = hostTimeMs() + skew;
    const { serverTimeMs } = await client.request<{ serverTimeMs: number }>('time');
    const t1 = hostTimeMs() + skew;
    const answer = await client.request<ReportResult>('report', {
      fps: 30,
      framesDecoded: 50,
      clockSync: [{ t0, serverTimeMs, t1 }],
      frames: [
        { rtpTimestamp, presentedAtMs: capturedAt + 80 + skew },
        { rtpTimestamp: (rtpTimestamp + 1) >>> 0, presentedAtMs: capturedAt + 80 + skew },
      ],
    });
    assert.ok(
      Math.abs(answer.clockOffsetMs! + skew) <= answer.clockRttMs! / 2 + 0.01,
      JSON.stringify(answer),
    );
    assert.ok(
      Math.abs(answer.glassToGlassMs[0]! - 80) <= answer.clockRttMs! / 2 + 0.1,
      JSON.stringify(answer),
    );
    assert.equal(answer.glassToGlassMs[1], null, 'a frame the phone never sent');
    await client.request('report', { glassToGlassMs: [300] });
    client.request('leave').catch(() => {});
    const ended = await waitFor(
      'the ended event',
      () => t.events.find((e) => e.type === 'ended'),
      (e) => e !== undefined,
    );
    assert.equal(ended.stats?.fps, 30);
    assert.equal(ended.stats?.framesDecoded, 50);
    // The session's figure is the measured one in 1 ms bins: 80 within the clock estimate's error.
    assert.equal(ended.stats?.glassToGlassP50Ms, Math.round(answer.glassToGlassMs[0]!));
    assert.equal(ended.stats?.glassToGlassP95Ms, 300);
    const text = await t.sfu.registry.metrics();
    assert.match(text, /cphone_stream_latency_samples_total\{outcome="measured"\} 1/);
    assert.match(text, /cphone_stream_latency_samples_total\{outcome="unknown_frame"\} 1/);
    assert.match(text, /cphone_stream_glass_to_glass_seconds_count 1/);
  } finally {
    await t.close();
  }
});

test('a dead worker is replaced; its rooms close with 4503 and viewers can join again', async () => {
  const workers: types.Worker[] = [];
  const onWorker = (w: types.Worker) => workers.push(w);
  mediasoup.observer.on('newworker', onWorker);
  const t = await startTestSfu();
  try {
    const token = await t.tokens.sign({ deviceId: 'p' });
    const client = await SignalClient.connect(t.url);
    await client.request('join', { token });
    process.kill(workers[0]!.pid, 'SIGKILL');
    assert.deepEqual(await client.closed, {
      code: CloseCode.MEDIA_RESTART,
      reason: 'MEDIA_RESTART: the media server restarted; join again',
    });
    await waitFor(
      'a new worker',
      () => workers.filter((w) => !w.closed).length,
      (n) => n === 1,
    );
    const back = await SignalClient.connect(t.url);
    assert.equal((await back.request<{ resumed: boolean }>('join', { token })).resumed, false);
    assert.match(await t.sfu.registry.metrics(), /cphone_sfu_worker_deaths_total 1/);
  } finally {
    mediasoup.observer.off('newworker', onWorker);
    await t.close();
  }
});

test('a socket that stops answering pings is cut, and its seat held for a rejoin', async () => {
  // Long enough that a join on a loaded machine is answered before the first missed pong cuts.
  const t = await startTestSfu({ pingIntervalMs: 300 });
  try {
    const token = await t.tokens.sign({ deviceId: 'p' });
    const mute = await SignalClient.connect(t.url, { autoPong: false });
    await mute.request('join', { token });
    const closed = await mute.closed;
    assert.equal(closed.code, 1006, 'cut without a close frame');
    await waitFor(
      'the seat held',
      () => t.sfu.sessions(),
      (s) => s.length === 1 && !s[0]!.connected,
    );
    const back = await SignalClient.connect(t.url);
    let pings = 0;
    back.socket.on('ping', () => pings++);
    assert.equal((await back.request<{ resumed: boolean }>('join', { token })).resumed, true);
    // Answered pings keep it: three rounds later it is still open and holds the seat.
    await waitFor(
      'three pings answered',
      async () => pings,
      (n) => n >= 3,
    );
    assert.equal(back.closeInfo, undefined, 'a socket that answers pings stays');
    assert.equal(t.sfu.sessions()[0]?.connected, true);
  } finally {
    await t.close();
  }
});

test('close ends every session with 1001', async () => {
  const t = await startTestSfu();
  const { client } = await viewer(t, { deviceId: 'p' });
  await t.close();
  assert.equal((await client.closed).code, CloseCode.SHUTDOWN);
  assert.equal(t.events.at(-1)?.endReason, 'SHUTDOWN');
});
