/// <reference lib="dom" />
// The web console in Debian's Chromium against the real control plane (serving the built console
// at /), a real agent with the sim runtime and virtual phones: signing in and out, throttling, the
// phone list, one phone's player and APK install, group control across screens of different sizes,
// the language switch, one tenant's user never reaching another tenant's phones, and a tenant
// admin's usage page and audit log. Screenshots of the key steps go to docs/screenshots/.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ingestUsage } from '@cphone/control-plane/testing';
import type { Agent } from '@cphone/host-agent';
import {
  AuditService,
  agentv1,
  DeviceService,
  DeviceState,
  HostState,
  Role,
  TenantKind,
  TenantService,
  UserService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium } from '@cphone/sfu/testing';
import { ensureConsoleBuilt } from '@cphone/web/build';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type Harness, startHarness, startPhones } from './harness.js';

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const PASSWORD = 'correct horse battery';

let h: Harness;
let agent: Agent;
let browser: Browser;
let runtime: Awaited<ReturnType<typeof startPhones>>['runtime'];
let phone: Awaited<ReturnType<typeof startPhones>>['phone'];
const contexts: BrowserContext[] = [];

/** A user of `tenantId` made the way a tenant admin would: an invitation, accepted. */
async function makeUser(tenantId: string, email: string, role: Role): Promise<void> {
  const users = h.client(UserService);
  const invited = await users.inviteUser({ tenantId, email, role, displayName: email.split('@')[0] ?? '' });
  await users.acceptInvitation({ token: invited.token, password: PASSWORD, displayName: email });
}

async function runningPhone(tenantId: string, name: string, width = 720, height = 1280): Promise<string> {
  const { devices } = await h.devices.batchCreateDevices({
    tenantId,
    requests: [
      {
        displayName: name,
        labels: { team: 'qa' },
        spec: {
          imageId: h.imageId,
          vcpuMillicores: 1000,
          memoryMib: 1024,
          storageGib: 4,
          screen: { widthPx: width, heightPx: height, dpi: 320, fps: 30 },
        },
        placement: { nodeSelector: { pool: 'e2e' } },
      },
    ],
  });
  const deviceId = devices[0]?.deviceId ?? '';
  await h.waitForState(deviceId, DeviceState.RUNNING);
  return deviceId;
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1360, height: 900 },
  });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${h.plane.httpUrl}/`);
  return page;
}

async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function shot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name) });
}

let tenantA: string;
let tenantB: string;
let phoneA: string;
let phoneB: string;

before(async () => {
  h = await startHarness({ consoleDir: await ensureConsoleBuilt() });
  ({ runtime, phone } = await startPhones(h));
  // Plain ws on loopback, as the embedded default runs it: the browser needs no certificate.
  agent = await h.startAgent({ env: { CPHONE_STREAM_TLS: 'off' }, deps: { runtime } });
  await h.waitForHost(HostState.READY, true);
  browser = await launchChromium();
  const tenants = h.client(TenantService);
  const [a, b] = await Promise.all(
    ['Shop A', 'Shop B'].map(
      async (displayName) =>
        (await tenants.createTenant({ kind: TenantKind.CUSTOMER, displayName, parentTenantId: h.tenantId }))
          .tenant?.tenantId as string,
    ),
  );
  assert.ok(a && b);
  [tenantA, tenantB] = [a, b];
  await makeUser(tenantA, 'alice@shop-a.test', Role.TENANT_ADMIN);
  await makeUser(tenantB, 'bob@shop-b.test', Role.TENANT_USER);
  [phoneA, phoneB] = await Promise.all([
    runningPhone(tenantA, 'a-phone-1'),
    runningPhone(tenantB, 'b-phone-1'),
  ]);
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await agent?.close();
  await runtime?.close();
  await h?.close();
});

describe('signing in', () => {
  test('a wrong password is refused in words; the right one shows my phones and only mine', async () => {
    const page = await newPage();
    await shot(page, 'console-sign-in.png');
    await signIn(page, 'alice@shop-a.test', 'not the password');
    await page.getByRole('alert').getByText('Wrong email or password.').waitFor();
    await signIn(page, 'alice@shop-a.test');
    await page.getByText('Signed in as alice@shop-a.test').waitFor();
    const row = page.locator(`tr[data-device="${phoneA}"]`);
    await row.getByText('Running').waitFor();
    await row.locator('img.thumb').waitFor();
    assert.equal(
      await page.locator(`tr[data-device="${phoneB}"]`).count(),
      0,
      "tenant B's phone is not listed",
    );
    await shot(page, 'console-phones.png');
  });

  test('repeated failures are throttled with a time to wait', async () => {
    const page = await newPage();
    const email = 'throttled@shop-a.test';
    await makeUser(tenantA, email, Role.TENANT_USER);
    const throttled = page.getByRole('alert').getByText(/Too many attempts\. Try again in \d+ seconds\./);
    await waitFor(
      'the sign-in to be throttled',
      async () => {
        await signIn(page, email, 'wrong wrong wrong');
        await page.getByRole('alert').waitFor();
        return throttled.count();
      },
      (n) => n > 0,
      { timeoutMs: 20_000 },
    );
    // Even the right password waits now.
    await signIn(page, email);
    await throttled.waitFor();
  });

  test('signing out ends the session at once: its cookie opens nothing any more', async () => {
    const page = await newPage();
    await signIn(page, 'alice@shop-a.test');
    await page.getByText('Signed in as alice@shop-a.test').waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'cphone_session');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    const withCookie = createClient(
      DeviceService,
      createConnectTransport({
        baseUrl: h.plane.httpUrl,
        httpVersion: '1.1',
        interceptors: [
          (next) => (req) => {
            req.header.set('cookie', `cphone_session=${cookie.value}`);
            return next(req);
          },
        ],
      }),
    );
    assert.ok((await withCookie.getDevice({ deviceId: phoneA })).device);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await assert.rejects(withCookie.getDevice({ deviceId: phoneA }), (e) => {
      assert.equal(ConnectError.from(e).code, Code.Unauthenticated);
      return true;
    });
  });
});

describe("one tenant's user never reaches another tenant's phones", () => {
  test("by address in the console, and by device, session or user id through the API with the user's own session", async () => {
    const page = await newPage();
    await signIn(page, 'bob@shop-b.test');
    await page.getByText('Signed in as bob@shop-b.test').waitFor();
    await page.goto(`${h.plane.httpUrl}/#/phones/${phoneA}`);
    await page.getByRole('alert').getByText('That no longer exists, or you cannot see it.').waitFor();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Request id: req_/);
    // The same through the API, on bob's own cookie and CSRF token, for every kind of call.
    // A's own stream session and A's admin: known ids that B's user must not reach either.
    const { streamSession } = await h.devices.createStreamSession({ deviceId: phoneA });
    const alice = (await h.client(UserService).listUsers({ tenantId: tenantA })).users[0];
    assert.ok(streamSession && alice);
    // Inline callbacks only: the test's loader names functions it sees assigned, through a helper
    // the page does not have.
    const answer = await page.evaluate(
      async ([id, sessionId, userId]) => {
        const me = (await fetch('/cphone.api.v1.UserService/GetCurrentUser', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        }).then((r) => r.json())) as { csrfToken: string };
        const calls: [string, object][] = [
          ['GetDevice', { deviceId: id }],
          ['StopDevice', { deviceId: id }],
          ['TakeScreenshot', { deviceId: id }],
          ['CreateStreamSession', { deviceId: id, rights: 'STREAM_RIGHTS_CONTROL' }],
          ['ListStreamSessions', { deviceId: id }],
          ['RevokeStreamSession', { sessionId }],
          ['ListDeviceEvents', { deviceId: id }],
          ['../cphone.api.v1.UserService/GetUser', { userId }],
          ['../cphone.api.v1.UserService/DeleteUser', { userId }],
        ];
        return Promise.all(
          calls.map(([method, body]) =>
            fetch(new URL(method, `${location.origin}/cphone.api.v1.DeviceService/`), {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-cphone-csrf': me.csrfToken },
              body: JSON.stringify(body),
            }).then((r) => r.json() as Promise<{ code?: string }>),
          ),
        );
      },
      [phoneA, streamSession.sessionId, alice.userId],
    );
    assert.equal(answer.length, 9);
    for (const a of answer) assert.equal(a.code, 'not_found', JSON.stringify(a));
    assert.equal((await h.device(phoneA)).state, DeviceState.RUNNING);
    assert.ok((await h.client(UserService).getUser({ userId: alice.userId })).user, 'alice is still there');
  });
});

describe('one phone', () => {
  test('the player shows the screen, in Chinese when chosen, and an APK dropped in installs', async () => {
    const page = await newPage();
    await signIn(page, 'alice@shop-a.test');
    await page.getByRole('link', { name: 'Open' }).first().click();
    const video = page.locator('cphone-player video');
    await waitFor(
      'frames in the player',
      () => video.evaluate((v: HTMLVideoElement) => v.videoWidth),
      (w) => w > 0,
      { timeoutMs: 20_000 },
    );
    await page.getByLabel('Language', { exact: true }).selectOption('zh-CN');
    await page.getByRole('button', { name: '下载截图' }).waitFor();
    await shot(page, 'console-phone-zh.png');
    await page.getByLabel('语言', { exact: true }).selectOption('en');

    const apk = fileURLToPath(new URL('../../host-agent/fixtures/test-app.apk', import.meta.url));
    await page.getByTestId('apk-input').setInputFiles(apk);
    await page
      .getByRole('status')
      .getByText(/Installed dev\.cphone\.testapp/)
      .waitFor({ timeout: 30_000 });
    const packages = await h.devices.execShell({ deviceId: phoneA, command: 'pm list packages' });
    assert.match(Buffer.from(packages.stdout).toString(), /package:dev\.cphone\.testapp/);
    // The logcat, followed and filtered.
    await page.getByLabel('Follow').check();
    const logcat = page.locator('pre.logcat');
    await logcat.getByText(/boot completed/).waitFor();
    await page.getByLabel('Filter lines').fill('ActivityManager');
    await waitFor(
      'only the matching lines',
      async () => ((await logcat.textContent()) ?? '').split('\n').filter(Boolean),
      (lines) => lines.length > 0 && lines.every((l) => l.includes('ActivityManager')),
    );
    await shot(page, 'console-phone.png');
  });
});

describe('group control', () => {
  test('a tap on the leading phone lands at the same relative place on three phones of different sizes; a phone that goes away is marked and never holds the others up', async () => {
    const sizes: [number, number][] = [
      [720, 1280],
      [1080, 1920],
      [480, 960],
    ];
    const ids = await Promise.all(sizes.map(([w, hgt], i) => runningPhone(tenantA, `group-${i}`, w, hgt)));
    const page = await newPage();
    await signIn(page, 'alice@shop-a.test');
    await page.getByText('Signed in as alice@shop-a.test').waitFor();
    await page.goto(`${h.plane.httpUrl}/#/group?ids=${ids.join(',')}`);
    const videos = page.locator('cphone-player video');
    await waitFor(
      'frames in all three players',
      () => videos.evaluateAll((vs) => vs.map((v) => (v as HTMLVideoElement).videoWidth)),
      (ws) => ws.length === 3 && ws.every((w) => w > 0),
      { timeoutMs: 30_000 },
    );
    // The picture inside the leader's video box (fitted, aspect kept), where the tap goes.
    const picture = await page
      .locator(`cphone-player[data-device="${ids[0]}"] video`)
      .evaluate((v: HTMLVideoElement) => {
        const box = v.getBoundingClientRect();
        const scale = Math.min(box.width / v.videoWidth, box.height / v.videoHeight);
        const [w, hgt] = [v.videoWidth * scale, v.videoHeight * scale];
        return {
          x: box.left + (box.width - w) / 2,
          y: box.top + (box.height - hgt) / 2,
          width: w,
          height: hgt,
        };
      });
    // Each phone's followers must have their input channel up before the tap is mirrored.
    await waitFor(
      'every player able to take input',
      () =>
        page
          .locator('cphone-player')
          .evaluateAll((ps) => ps.map((p) => (p as HTMLElement & { inputOpen: boolean }).inputOpen)),
      (open) => open.length === 3 && open.every(Boolean),
      { timeoutMs: 20_000 },
    );
    await page.mouse.click(picture.x + picture.width * 0.25, picture.y + picture.height * 0.75);
    for (const [i, id] of ids.entries()) {
      const [w, hgt] = sizes[i] ?? [0, 0];
      const down = await phone(id).events.waitForInput(
        (e) => e.kind === 'motion' && e.action === 'down',
        10_000,
      );
      assert.ok(down.kind === 'motion');
      assert.ok(Math.abs(down.x - w * 0.25) <= w * 0.01, `phone ${i}: x ${down.x} of ${w}`);
      assert.ok(Math.abs(down.y - hgt * 0.75) <= hgt * 0.01, `phone ${i}: y ${down.y} of ${hgt}`);
    }
    await shot(page, 'console-group.png');

    // A follower that goes away is marked and skipped; the others still get every tap.
    const [, second, gone] = ids as [string, string, string];
    await h.devices.stopDevice({ deviceId: gone });
    await waitFor(
      'the stopped phone’s player closed',
      () =>
        page
          .locator(`cphone-player[data-device="${gone}"]`)
          .evaluate((p) => (p as HTMLElement & { state: string }).state),
      (state) => state === 'closed',
      { timeoutMs: 20_000 },
    );
    await page.mouse.click(picture.x + picture.width * 0.5, picture.y + picture.height * 0.5);
    for (const [i, id] of [ids[0] as string, second].entries()) {
      const [w] = sizes[i] ?? [0, 0];
      await phone(id).events.waitForInput(
        (e) => e.kind === 'motion' && e.action === 'down' && Math.abs(e.x - w * 0.5) <= w * 0.01,
        10_000,
      );
    }
    await page.locator(`[data-cell="${gone}"] [data-mark="failed"]`).getByText('Not reached').waitFor();
  });
});

describe('a tenant admin', () => {
  test('invites a user who joins through the link, stops and starts phones in a batch, and removes the user', async () => {
    const admin = await newPage();
    await signIn(admin, 'alice@shop-a.test');
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.getByLabel('Email').fill('carol@shop-a.test');
    await admin.getByLabel('Name').fill('Carol');
    await admin.getByRole('button', { name: 'Create invitation' }).click();
    const link = (await admin.getByRole('status').locator('code').textContent()) ?? '';
    assert.match(link, /#\/accept\?token=/);
    await shot(admin, 'console-users.png');

    const carol = await newPage();
    await carol.goto(link);
    await carol.getByLabel('Your name').fill('Carol');
    await carol.getByLabel('Password').fill(PASSWORD);
    await carol.getByRole('button', { name: 'Join and sign in' }).click();
    await carol.getByText('Signed in as carol@shop-a.test').waitFor();
    await carol.locator(`tr[data-device="${phoneA}"]`).waitFor();

    // Batch: select the phone, stop it, and start it again, from the list.
    const row = carol.locator(`tr[data-device="${phoneA}"]`);
    await row.getByRole('checkbox').check();
    await carol.getByRole('button', { name: 'Stop', exact: true }).click();
    await carol.getByRole('status').getByText('Stop: 1 done, 0 failed').waitFor();
    await h.waitForState(phoneA, DeviceState.STOPPED);
    await carol.getByRole('button', { name: 'Start', exact: true }).click();
    await carol.getByRole('status').getByText('Start: 1 done, 0 failed').waitFor();
    await h.waitForState(phoneA, DeviceState.RUNNING);

    admin.once('dialog', (d) => void d.accept());
    await admin.reload();
    await admin
      .locator('tr', { hasText: 'carol@shop-a.test' })
      .getByRole('button', { name: 'Remove' })
      .click();
    await admin.locator('tr', { hasText: 'carol@shop-a.test' }).waitFor({ state: 'detached' });
    // Carol's session ended with her account: her next call sends her back to sign in.
    await carol.getByRole('button', { name: 'Refresh' }).click();
    await carol.getByRole('button', { name: 'Sign in' }).waitFor();
  });
});

describe('my account', () => {
  test('shows where I am signed in, signs another browser out, and changes my password', async () => {
    await makeUser(tenantA, 'dave@shop-a.test', Role.TENANT_USER);
    const laptop = await newPage();
    const other = await newPage();
    await signIn(other, 'dave@shop-a.test');
    await other.getByText('Signed in as dave@shop-a.test').waitFor();
    await signIn(laptop, 'dave@shop-a.test');
    await laptop.getByRole('link', { name: 'My account' }).click();
    const rows = laptop.locator('tr[data-session]');
    // Three: accepting the invitation signed in too (through the API, in makeUser).
    await waitFor(
      'every session listed',
      () => rows.count(),
      (n) => n === 3,
    );
    await laptop.getByText('This browser').waitFor();
    for (const left of [2, 1]) {
      await laptop.getByRole('button', { name: 'Sign out there' }).first().click();
      await waitFor(
        'the session gone from the list',
        () => rows.count(),
        (n) => n === left,
      );
    }
    await laptop.getByRole('status').getByText('That session has ended.').waitFor();
    await laptop.getByText('This browser').waitFor();
    await other.getByRole('button', { name: 'Refresh' }).click();
    await other.getByRole('button', { name: 'Sign in' }).waitFor();

    const fresh = 'a brand new secret';
    await laptop.getByLabel('Current password').fill(PASSWORD);
    await laptop.getByLabel('New password (at least 10 characters)').fill(fresh);
    await laptop.getByRole('button', { name: 'Change password' }).click();
    await laptop.getByRole('status').getByText('Password changed.').waitFor();
    await signIn(other, 'dave@shop-a.test');
    await other.getByRole('alert').getByText('Wrong email or password.').waitFor();
    await signIn(other, 'dave@shop-a.test', fresh);
    await other.getByText('Signed in as dave@shop-a.test').waitFor();
  });
});

describe("a tenant admin's usage and audit log", () => {
  test('the month shows a phone’s minutes by day and by phone with the totals, downloads as CSV; the audit log shows the admin’s stop and narrows to it', async () => {
    const deviceId = await runningPhone(tenantA, 'metered');
    // Next month (UTC), which holds only these samples: the agent's own samples carry today's time.
    // The host reports them as it would then (intake judges a sample by the time it is given).
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    const month = new Date(monthStart).toISOString().slice(0, 7);
    const day = (n: number) => monthStart + (n - 1) * 86_400_000 + 9 * 3_600_000;
    // Running minutes on days 2, 3 and 5 (20 + 12 + 10 = 42), then 3 stopped minutes on day 5.
    const minutes = [
      ...Array.from({ length: 20 }, (_, i) => [day(2) + i * 60_000, agentv1.DeviceState.RUNNING] as const),
      ...Array.from({ length: 12 }, (_, i) => [day(3) + i * 60_000, agentv1.DeviceState.RUNNING] as const),
      ...Array.from({ length: 10 }, (_, i) => [day(5) + i * 60_000, agentv1.DeviceState.RUNNING] as const),
      ...Array.from(
        { length: 3 },
        (_, i) => [day(5) + (10 + i) * 60_000, agentv1.DeviceState.STOPPED] as const,
      ),
    ];
    const samples = minutes.map(([start, state], i) =>
      create(agentv1.UsageSampleSchema, {
        sequence: 2_000_000_000n + BigInt(i),
        deviceId,
        tenantId: tenantA,
        startTime: timestampFromDate(new Date(start)),
        endTime: timestampFromDate(new Date(start + 60_000)),
        vcpuMillicores: 1000,
        memoryMib: 1024,
        storageGib: 4,
        state,
      }),
    );
    const intake = await ingestUsage(h.plane.deps.db, h.hostId, samples, new Date(day(5) + 3_600_000));
    assert.equal(intake.inserted, 45, JSON.stringify(intake));

    const page = await newPage();
    await signIn(page, 'alice@shop-a.test');
    await page.getByRole('link', { name: 'Usage' }).click();
    // This month first: whatever the agent has reported, never the samples of next month.
    await page.getByRole('heading', { name: 'Usage' }).waitFor();
    await page.getByLabel('Time zone').fill('UTC');
    await page.getByLabel('Time zone').blur();
    await page.getByLabel('Month').fill(month);
    const total = page.locator('tr[data-usage-total] td');
    const cells = (rows: typeof total) => rows.evaluateAll((tds) => tds.map((td) => td.textContent?.trim()));
    // Day, bar, running, stopped, vCPU, memory GiB, storage GiB (45 minutes at 4 GiB), viewer.
    const expected = ['Total', '', '42', '3', '42', '42', '180', '0'];
    await waitFor(
      'the month’s totals',
      () => cells(total),
      (c) => JSON.stringify(c) === JSON.stringify(expected),
    );
    const days = page.locator('tr[data-usage-row]');
    assert.equal(await days.count(), 3, 'one row per day with usage');
    assert.deepEqual(await cells(days.nth(0).locator('td')), [
      new Intl.DateTimeFormat('en', { timeZone: 'UTC', dateStyle: 'medium' }).format(new Date(day(2))),
      '',
      '20',
      '0',
      '20',
      '20',
      '80',
      '0',
    ]);
    const widths = await days
      .locator('td.bar div')
      .evaluateAll((bars) => bars.map((b) => (b as HTMLElement).style.width));
    assert.deepEqual(widths, ['100%', '60%', '50%'], 'bars in proportion to the running minutes');
    await page.getByLabel('Month').blur();
    await shot(page, 'console-usage.png');

    await page.getByLabel('Show').selectOption('device');
    const row = page.locator('tr[data-usage-row]', { hasText: deviceId });
    await row.waitFor();
    assert.deepEqual((await cells(row.locator('td'))).slice(1), ['42', '3', '42', '42', '180', '0']);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `usage-${month}-device.csv`);
    const csv = (await readFile(await download.path(), 'utf8')).split('\n');
    assert.match(
      csv[0] ?? '',
      /^tenant_id,device_id,start_time,end_time,device_minutes,stopped_device_minutes,/,
    );
    assert.ok(
      csv.some((line) => line.startsWith(`${tenantA},${deviceId},`)),
      `a row for the phone: ${csv.join('\n')}`,
    );

    // The admin stops the phone; the audit log shows it, from this browser, with outcome ok.
    await page.getByRole('link', { name: 'My phones' }).click();
    await page.locator(`tr[data-device="${deviceId}"]`).getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.getByRole('status').getByText('Stop: 1 done, 0 failed').waitFor();
    // Audit rows are written beside the call, in batches: wait for the row before reading the page.
    await waitFor(
      'the stop in the audit log',
      async () =>
        (
          await h.client(AuditService).listAuditEvents({
            tenantId: tenantA,
            resourceId: deviceId,
            method: 'DeviceService/StopDevice',
          })
        ).auditEvents.length,
      (n) => n > 0,
    );
    await page.getByRole('link', { name: 'Audit log' }).click();
    const stop = page.locator('tr[data-audit-event]', { hasText: 'DeviceService/StopDevice' }).filter({
      hasText: deviceId,
    });
    await stop.waitFor();
    assert.equal(await stop.locator('[data-outcome]').textContent(), 'ok');
    assert.match((await stop.textContent()) ?? '', /User/);
    assert.match((await stop.textContent()) ?? '', /127\.0\.0\.1/);
    const all = page.locator('tr[data-audit-event]');
    const before = await all.count();
    assert.ok(before > 1, `other events are listed too: ${before}`);

    await page.getByLabel('Resource id').fill(deviceId);
    await page.getByLabel('Action').fill('DeviceService/StopDevice');
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await waitFor(
      'only the stop of this phone',
      () => all.evaluateAll((rows) => rows.map((r) => r.textContent ?? '')),
      (rows) => rows.length === 1 && rows.every((r) => r.includes('StopDevice') && r.includes(deviceId)),
    );
    await shot(page, 'console-audit.png');
    await page.getByLabel('Outcome').selectOption('not_found');
    await page.getByRole('button', { name: 'Filter', exact: true }).click();
    await page.getByRole('status').getByText('No audit events match.').waitFor();
  });
});
