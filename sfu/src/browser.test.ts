// The sfu with a real WebRTC peer: headless Chromium running mediasoup-client (testing/viewer-page)
// receives the committed H.264 recording and Opus sound, and sends input back over its data channel.
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import type { Browser } from 'playwright-core';
import { CloseCode } from './close-codes.js';
import type { ViewerLink } from './feed.js';
import { launchChromium, startTestSfu, type TestSfu, ViewerPage } from './testing/index.js';

let browser: Browser;
before(async () => {
  browser = await launchChromium();
});
after(() => browser.close());

async function page(): Promise<ViewerPage> {
  return ViewerPage.open(browser);
}

const closedWith = (p: ViewerPage) =>
  waitFor(
    'the signaling socket to close',
    () => p.state(),
    (s) => s.closed !== undefined,
  ).then((s) => s.closed!);

async function withSfu(options: Parameters<typeof startTestSfu>[0], run: (t: TestSfu) => Promise<void>) {
  const t = await startTestSfu(options);
  const pages = browser.contexts().flatMap((c) => c.pages());
  try {
    await run(t);
  } finally {
    for (const p of browser.contexts().flatMap((c) => c.pages())) if (!pages.includes(p)) await p.close();
    await t.close();
  }
}

test('a viewer decodes the phone’s H.264 at its size within a second and receives its sound', async () => {
  await withSfu({}, async (t) => {
    const viewer = await page();
    const joined = await viewer.start({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }) });
    const started = Date.now();
    await waitFor(
      'a first decoded frame',
      () => viewer.state(),
      (s) => s.frames > 0,
    );
    const firstFrameMs = Date.now() - started;
    const state = await waitFor(
      '30 decoded frames',
      () => viewer.state(),
      (s) => s.frames >= 30,
    );
    assert.deepEqual([state.width, state.height], [360, 640]);
    assert.ok(firstFrameMs < 1000, `first frame after ${firstFrameMs} ms`);
    const received = await waitFor(
      'audio packets',
      () => viewer.received(),
      (r) => r.audio > 20,
    );
    assert.ok(received.video > 0);
    assert.equal(joined.rights, 'view');
    const feed = t.feeds.of('p')[0]!;
    assert.ok(feed.keyframeRequests >= 1, 'a new consumer asks the phone for a key frame');
    await waitFor(
      'the video size event',
      () => viewer.state(),
      (s) =>
        s.events.some((e) => (e as { event?: string }).event === 'videoSize') ||
        joined.videoSize !== undefined,
    );
  });
});

test('a CONTROL viewer’s input reaches the phone checked; the phone’s clipboard comes back', async () => {
  await withSfu({}, async (t) => {
    const viewer = await page();
    await viewer.start({ url: t.url, token: await t.tokens.sign({ deviceId: 'p', rights: 'control' }) });
    const touch = {
      type: 'touch',
      action: 'down',
      pointerId: 1,
      x: 100,
      y: 200.5,
      pressure: 1,
      frameWidth: 360,
      frameHeight: 640,
    };
    await viewer.sendInput({ ...touch, extra: 'dropped' });
    await viewer.sendInput({ type: 'text', text: '你好, world' });
    const feed = t.feeds.of('p')[0]!;
    await waitFor(
      'the input at the phone',
      () => feed.inputs.length,
      (n) => n === 2,
    );
    assert.deepEqual(feed.inputs, [touch, { type: 'text', text: '你好, world' }]);

    feed.wiring.onClipboard('copied 🙂');
    const state = await waitFor(
      'the clipboard at the viewer',
      () => viewer.state(),
      (s) => s.outputs.length > 0,
    );
    assert.deepEqual(state.outputs, [{ type: 'clipboard', text: 'copied 🙂' }]);

    await viewer.sendInput({ type: 'touch', action: 'down' });
    assert.deepEqual(await closedWith(viewer), {
      code: CloseCode.BAD_MESSAGE,
      reason: 'BAD_MESSAGE: input pointerId: must be an integer in 0..2147483647',
    });
    assert.equal(feed.inputs.length, 2);
  });
});

test('a VIEW session that opens input is closed with 4403; a bad token with 4401', async () => {
  await withSfu({}, async (t) => {
    const watcher = await page();
    await watcher.startQuietly({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }), input: true });
    assert.deepEqual(await closedWith(watcher), {
      code: CloseCode.FORBIDDEN,
      reason: 'FORBIDDEN: this session may watch the phone, not control it',
    });
    const forger = await page();
    await forger.startQuietly({ url: t.url, token: 'eyJhbGciOiJFZERTQSJ9.e30.c2ln' });
    assert.equal((await closedWith(forger)).code, CloseCode.BAD_TOKEN);
    assert.equal(t.feeds.of('p')[0]?.inputs.length ?? 0, 0);
  });
});

test('revoke ends the viewer’s session within a second, with the reason', async () => {
  await withSfu({}, async (t) => {
    const viewer = await page();
    const joined = await viewer.start({
      url: t.url,
      token: await t.tokens.sign({ deviceId: 'p', rights: 'control' }),
    });
    await waitFor(
      'frames',
      () => viewer.state(),
      (s) => s.frames > 0,
    );
    const started = Date.now();
    t.sfu.revoke({ sessionId: joined.sessionId as string }, 'REVOKED', 'an administrator ended the session');
    const closed = await closedWith(viewer);
    const tookMs = Date.now() - started;
    assert.deepEqual(closed, {
      code: CloseCode.REVOKED,
      reason: 'REVOKED: an administrator ended the session',
    });
    assert.ok(tookMs < 1000, `closed after ${tookMs} ms`);
  });
});

test('over the viewer cap a join is refused; a malformed message closes only its own socket', async () => {
  await withSfu({ maxViewers: 2 }, async (t) => {
    const [a, b, c] = await Promise.all([page(), page(), page()]);
    await a.start({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }) });
    await b.start({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }) });
    await c.startQuietly({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }) });
    assert.deepEqual(await closedWith(c), {
      code: CloseCode.FULL,
      reason: 'FULL: this phone already has 2 viewers',
    });

    await a.request('dance').catch(() => {});
    assert.equal((await closedWith(a)).code, CloseCode.BAD_MESSAGE);
    const before = (await b.state()).frames;
    await waitFor(
      'the other viewer to keep decoding',
      () => b.state(),
      (s) => s.frames > before + 15,
    );
    assert.equal((await b.state()).closed, undefined);
  });
});

test('a viewer whose socket drops rejoins with its session id and gets the picture back', async () => {
  await withSfu({}, async (t) => {
    const token = await t.tokens.sign({ deviceId: 'p', rights: 'control' });
    const first = await page();
    const joined = await first.start({ url: t.url, token });
    await waitFor(
      'frames',
      () => first.state(),
      (s) => s.frames > 0,
    );
    await first.drop();
    await waitFor(
      'the seat held',
      () => t.sfu.sessions(),
      (s) => s.length === 1 && !s[0]!.connected,
    );

    const again = await page();
    const rejoined = await again.start({ url: t.url, token, sessionId: joined.sessionId as string });
    assert.equal(rejoined.resumed, true);
    assert.equal(rejoined.sessionId, joined.sessionId);
    await waitFor(
      'frames after the rejoin',
      () => again.state(),
      (s) => s.frames > 10,
    );
    await again.sendInput({ type: 'nav', button: 'home' });
    await waitFor(
      'input after the rejoin',
      () => t.feeds.of('p')[0]!.inputs,
      (i) => i.length === 1,
    );
    assert.deepEqual(
      t.events.map((e) => [e.type, e.resumed]),
      [
        ['joined', false],
        ['joined', true],
      ],
    );
  });
});

test('a viewer’s key frame request (PLI) reaches the feed', async () => {
  const consumers: types.Consumer[] = [];
  const onWorker = (w: types.Worker) =>
    w.observer.on('newrouter', (r) =>
      r.observer.on('newtransport', (tr) => tr.observer.on('newconsumer', (c) => consumers.push(c))),
    );
  mediasoup.observer.on('newworker', onWorker);
  try {
    await withSfu({}, async (t) => {
      const viewer = await page();
      await viewer.start({ url: t.url, token: await t.tokens.sign({ deviceId: 'p' }) });
      await waitFor(
        'frames',
        () => viewer.state(),
        (s) => s.frames > 0,
      );
      const feed = t.feeds.of('p')[0]!;
      const before = feed.keyframeRequests;
      // What a browser's PLI does on arrival: mediasoup asks the producer's source for a key frame.
      await consumers.find((c) => c.kind === 'video')!.requestKeyFrame();
      await waitFor(
        'the request at the feed',
        () => feed.keyframeRequests,
        (n) => n > before,
      );
    });
  } finally {
    mediasoup.observer.off('newworker', onWorker);
  }
});

test('the feed hears of its viewers, their quality and their links; a transport limit caps the estimate', async () => {
  await withSfu({ linkIntervalMs: 200 }, async (t) => {
    const viewer = await page();
    const joined = await viewer.start({
      url: t.url,
      token: await t.tokens.sign({ deviceId: 'p', rights: 'control' }),
      quality: '480p',
    });
    const sessionId = joined.sessionId as string;
    assert.equal(joined.quality, '480p');
    const feed = t.feeds.of('p')[0]!;
    assert.deepEqual(feed.viewers.get(sessionId), { sessionId, rights: 'control', quality: '480p' });
    // Chromium's transport-cc feedback gives mediasoup an estimate; the declared 4 Mbit/s ceiling
    // lets it probe above the 600 kbit/s it starts from.
    const links = () => feed.links.filter((l) => l.sessionId === sessionId).map((l) => l.link);
    const first = await waitFor(
      'a link figure',
      () => links().at(-1),
      (l): l is ViewerLink => l !== undefined && l.sendBitrate > 0,
    );
    assert.ok(first.lossFraction >= 0 && first.lossFraction <= 1 && first.score >= 0 && first.score <= 10);
    await waitFor(
      'an estimate probed above the start',
      () => links().at(-1)?.availableBitrate ?? 0,
      (bps) => bps > 1_000_000,
    );

    assert.equal(await t.sfu.limitOutgoingBitrate(sessionId, 200_000), true);
    const count = links().length;
    await waitFor(
      'the estimate under the limit',
      () => links().slice(count + 1),
      (l) => l.length > 0 && l.every((x) => x.availableBitrate <= 200_000),
    );

    await viewer.request('setQuality', { quality: 'auto' });
    assert.equal(feed.viewers.get(sessionId)?.quality, 'auto');
    await viewer.drop();
    await waitFor(
      'the viewer gone from the feed',
      () => feed.viewers.size,
      (n) => n === 0,
    );
  });
});
