// Web users through the real HTTP server and Connect clients, the cookie carried by hand as a
// browser would; on PGlite and PostgreSQL (npm test with DATABASE_URL).
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ApiKeyService, RetryInfoSchema, Role, UserService } from '@cphone/proto';
import { apiKeyService } from '../api/api-key-service.js';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { BOOTSTRAP_PASSWORD_FILE, bootstrapAdminUser } from '../auth/bootstrap.js';
import { ManualClock } from '../clock.js';
import { newId } from '../ids.js';
import type { Database, Role as RoleName } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { hashPassword } from './passwords.js';
import { userService } from './user-service.js';

const WINDOW_MS = 15 * 60_000;
const IDLE_MS = 12 * 3_600_000;
let store: TestDatabase<Database>;
let api: TestApi;
const clock = new ManualClock();

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    clock,
    config: {
      signInMaxFailuresPerAccount: 3,
      signInMaxFailuresPerAddress: 6,
      signInWindowMs: WINDOW_MS,
      sessionIdleTimeoutMs: IDLE_MS,
    },
    routes: (router, deps) => {
      router.service(UserService, userService(deps));
      router.service(ApiKeyService, apiKeyService(deps));
    },
  });
  await api.tenant('t_a', 'customer', 'platform');
  await api.tenant('t_b', 'customer', 'platform');
});

after(async () => {
  await api?.close();
  await store?.close();
});

const PASSWORD = 'correct horse battery';

async function addUser(tenantId: string, role: RoleName, email: string) {
  const id = newId('usr');
  await store.db
    .insertInto('web_user')
    .values({
      id,
      tenant_id: tenantId,
      email,
      display_name: email,
      role,
      password_hash: await hashPassword(PASSWORD),
    })
    .execute();
  return id;
}

/** A browser: keeps the session cookie it is given and sends it, with the CSRF header once known. */
function browser(options: { origin?: string } = {}) {
  const state = { cookie: '', csrf: '', setCookie: '' };
  const transport = createConnectTransport({
    baseUrl: api.url,
    httpVersion: '1.1',
    interceptors: [
      (next) => async (req) => {
        if (state.cookie) req.header.set('cookie', state.cookie);
        if (state.csrf) req.header.set('x-cphone-csrf', state.csrf);
        if (options.origin) req.header.set('origin', options.origin);
        const res = await next(req);
        const set = res.header.get('set-cookie');
        if (set) {
          state.setCookie = set;
          state.cookie = set.split(';')[0] ?? '';
          if (state.cookie === 'cphone_session=') state.cookie = '';
        }
        return res;
      },
    ],
  });
  const client = createClient(UserService, transport);
  return {
    state,
    client,
    keys: createClient(ApiKeyService, transport),
    async signIn(email: string, password = PASSWORD) {
      const res = await client.signIn({ email, password });
      state.csrf = res.csrfToken;
      return res;
    },
  };
}

async function failSignIns(email: string, n: number) {
  const b = browser();
  for (let i = 0; i < n; i++) {
    await assert.rejects(b.signIn(email, 'wrong password!'), connectError(Code.Unauthenticated));
  }
}

describe('bootstrap', () => {
  test('creates admin@localhost once, its password in a 0600 file, and it signs in', async () => {
    const logger = api.deps.logger;
    const password = await bootstrapAdminUser(store.db, api.deps.config.dataDir, logger);
    assert.ok(password);
    const file = join(api.deps.config.dataDir, BOOTSTRAP_PASSWORD_FILE);
    assert.equal((await readFile(file, 'utf8')).trim(), password);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(await bootstrapAdminUser(store.db, api.deps.config.dataDir, logger), undefined);
    const b = browser();
    const res = await b.signIn('Admin@Localhost', password);
    assert.equal(res.user?.role, Role.PLATFORM_ADMIN);
  });
});

describe('sign-in', () => {
  test('sets the session cookie with its attributes, and GetCurrentUser works with it', async () => {
    await addUser('t_a', 'tenant_admin', 'ada@a.example');
    const b = browser();
    const res = await b.signIn('  ADA@a.example ');
    assert.match(b.state.setCookie, /^cphone_session=cps_[a-z0-9]+; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.equal(res.user?.email, 'ada@a.example');
    assert.ok(res.expireTime);
    const me = await b.client.getCurrentUser({});
    assert.equal(me.user?.email, 'ada@a.example');
    assert.equal(me.csrfToken, res.csrfToken);
    assert.equal(me.tenantDisplayName, 't_a');
    assert.ok(me.user?.lastSignInTime);
    await assert.rejects(browser().client.getCurrentUser({}), connectError(Code.Unauthenticated));
    await assert.rejects(
      api.client(UserService, api.adminToken).getCurrentUser({}),
      connectError(Code.Unauthenticated, /signed-in session/),
    );
  });

  test('a wrong password and an unknown email fail the same way', async () => {
    await addUser('t_a', 'tenant_user', 'bob@a.example');
    const wrong = await browser()
      .signIn('bob@a.example', 'not the password')
      .catch((e: unknown) => e);
    const unknown = await browser()
      .signIn('nobody@a.example', PASSWORD)
      .catch((e: unknown) => e);
    assert.ok(wrong instanceof ConnectError && unknown instanceof ConnectError);
    assert.deepEqual([wrong.code, wrong.rawMessage], [Code.Unauthenticated, 'wrong email or password']);
    assert.deepEqual([unknown.code, unknown.rawMessage], [wrong.code, wrong.rawMessage]);
    clock.advance(WINDOW_MS + 1000);
  });

  test('too many failures for one account answer RESOURCE_EXHAUSTED with a retry time, even with the right password', async () => {
    await addUser('t_a', 'tenant_user', 'carol@a.example');
    await failSignIns('carol@a.example', 3);
    clock.advance(60_000);
    const error = await browser()
      .signIn('carol@a.example')
      .then(
        () => assert.fail('signed in while throttled'),
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(error.code, Code.ResourceExhausted);
    assert.match(error.rawMessage, /retry in 840 seconds/);
    const [retry] = error.findDetails(RetryInfoSchema);
    assert.equal(retry?.retryDelay?.seconds, 840n);
    clock.advance(WINDOW_MS);
    await browser().signIn('carol@a.example');
  });

  test('too many failures from one address answer RESOURCE_EXHAUSTED for any account', async () => {
    for (let i = 0; i < 6; i++) await failSignIns(`guess${i}@a.example`, 1);
    await addUser('t_a', 'tenant_user', 'dave@a.example');
    await assert.rejects(
      browser().signIn('dave@a.example'),
      connectError(Code.ResourceExhausted, /retry in \d+ seconds/),
    );
    clock.advance(WINDOW_MS + 1000);
    await browser().signIn('dave@a.example');
  });
});

describe('sessions', () => {
  test('sign-out ends the session at once: the old cookie is UNAUTHENTICATED', async () => {
    await addUser('t_a', 'tenant_user', 'erin@a.example');
    const b = browser();
    await b.signIn('erin@a.example');
    const cookie = b.state.cookie;
    await b.client.signOut({});
    assert.match(b.state.setCookie, /^cphone_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict$/);
    const old = browser();
    old.state.cookie = cookie;
    await assert.rejects(old.client.getCurrentUser({}), connectError(Code.Unauthenticated));
  });

  test('one session lists and revokes another', async () => {
    const userId = await addUser('t_a', 'tenant_user', 'frank@a.example');
    const laptop = browser();
    const phone = browser();
    await laptop.signIn('frank@a.example');
    await phone.signIn('frank@a.example');
    const { sessions } = await laptop.client.listSessions({});
    assert.equal(sessions.length, 2);
    assert.ok(sessions.every((s) => s.userId === userId && s.clientAddress === '127.0.0.1'));
    // Each session knows its own id among them.
    const laptopSession = (await laptop.client.getCurrentUser({})).sessionId;
    const phoneSession = (await phone.client.getCurrentUser({})).sessionId;
    assert.deepEqual(sessions.map((s) => s.sessionId).sort(), [laptopSession, phoneSession].sort());
    await phone.client.revokeSession({ sessionId: laptopSession });
    await assert.rejects(laptop.client.getCurrentUser({}), connectError(Code.Unauthenticated));
    await phone.client.getCurrentUser({});
  });

  test('a session unused past the idle timeout is refused', async () => {
    await addUser('t_a', 'tenant_user', 'gina@a.example');
    const b = browser();
    await b.signIn('gina@a.example');
    clock.advance(IDLE_MS - 60_000);
    await b.client.getCurrentUser({});
    clock.advance(IDLE_MS - 60_000);
    await b.client.getCurrentUser({});
    clock.advance(IDLE_MS + 1);
    await assert.rejects(b.client.getCurrentUser({}), connectError(Code.Unauthenticated));
  });
});

describe('sessions end', () => {
  test('at the absolute lifetime, however busy', async () => {
    await addUser('t_a', 'tenant_user', 'olga@a.example');
    const b = browser();
    const lifetimeMs = api.deps.config.sessionLifetimeMs;
    const { expireTime } = await b.signIn('olga@a.example');
    assert.equal(Number(expireTime?.seconds), Math.floor((clock.now().getTime() + lifetimeMs) / 1000));
    for (let used = 0; used + IDLE_MS / 2 < lifetimeMs; used += IDLE_MS / 2) {
      clock.advance(IDLE_MS / 2);
      await b.client.getCurrentUser({});
    }
    clock.advance(IDLE_MS / 2);
    await assert.rejects(b.client.getCurrentUser({}), connectError(Code.Unauthenticated));
  });

  test('ChangePassword ends the other sessions, keeps this one, and the old password stops working', async () => {
    await addUser('t_a', 'tenant_user', 'pete@a.example');
    const here = browser();
    const there = browser();
    await here.signIn('pete@a.example');
    await there.signIn('pete@a.example');
    await assert.rejects(
      here.client.changePassword({ currentPassword: 'not it at all', newPassword: 'a new password' }),
      connectError(Code.Unauthenticated, /current_password/),
    );
    await assert.rejects(
      here.client.changePassword({ currentPassword: PASSWORD, newPassword: 'short' }),
      connectError(Code.InvalidArgument, /invalid new_password "5 characters": must be 10-256 characters/),
    );
    await here.client.changePassword({ currentPassword: PASSWORD, newPassword: 'a new password' });
    await here.client.getCurrentUser({});
    await assert.rejects(there.client.getCurrentUser({}), connectError(Code.Unauthenticated));
    await assert.rejects(browser().signIn('pete@a.example'), connectError(Code.Unauthenticated));
    await browser().signIn('pete@a.example', 'a new password');
  });
});

describe('browser checks', () => {
  test('a state-changing call needs the CSRF header; a foreign Origin is refused; a Bearer key needs neither', async () => {
    const adminId = await addUser('t_a', 'tenant_admin', 'hank@a.example');
    const b = browser();
    await b.signIn('hank@a.example');
    const csrf = b.state.csrf;
    b.state.csrf = '';
    await assert.rejects(
      b.keys.createApiKey({ displayName: 'k', role: Role.TENANT_USER }),
      connectError(Code.PermissionDenied, /^missing or wrong x-cphone-csrf header$/),
    );
    b.state.csrf = 'csrf_wrong';
    await assert.rejects(
      b.keys.createApiKey({ displayName: 'k', role: Role.TENANT_USER }),
      connectError(Code.PermissionDenied),
    );
    await b.keys.listApiKeys({});
    b.state.csrf = csrf;
    const created = await b.keys.createApiKey({ displayName: 'k', role: Role.TENANT_USER });
    assert.equal(created.apiKey?.tenantId, 't_a');
    await api.deps.audit.flush();
    const row = await store.db
      .selectFrom('audit_log')
      .select(['actor', 'tenant_id'])
      .where('method', 'like', '%/CreateApiKey')
      .where('outcome', '=', 'ok')
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { actor: adminId, tenant_id: 't_a' });

    const foreign = browser({ origin: 'https://evil.example' });
    foreign.state.cookie = b.state.cookie;
    foreign.state.csrf = csrf;
    await assert.rejects(
      foreign.client.getCurrentUser({}),
      connectError(Code.PermissionDenied, /cross-origin/),
    );
    const same = browser({ origin: api.url });
    same.state.cookie = b.state.cookie;
    await same.client.getCurrentUser({});

    const keyed = createClient(
      ApiKeyService,
      createConnectTransport({
        baseUrl: api.url,
        httpVersion: '1.1',
        interceptors: [
          (next) => (req) => {
            req.header.set('authorization', `Bearer ${api.adminToken}`);
            req.header.set('cookie', b.state.cookie);
            return next(req);
          },
        ],
      }),
    );
    const signIn = await store.db
      .selectFrom('audit_log')
      .select(['actor', 'outcome'])
      .where('method', 'like', '%/SignIn')
      .where('actor', '=', adminId)
      .executeTakeFirstOrThrow();
    assert.equal(signIn.outcome, 'ok');
    const byKey = await keyed.createApiKey({ tenantId: 't_b', displayName: 'k', role: Role.TENANT_USER });
    assert.equal(byKey.apiKey?.tenantId, 't_b');
  });
});

describe('users and invitations', () => {
  test('invite, accept (signed in at once), then sign in with the new password', async () => {
    await addUser('t_b', 'tenant_admin', 'ivan@b.example');
    const admin = browser();
    await admin.signIn('ivan@b.example');
    const { invitation, token } = await admin.client.inviteUser({
      email: 'Judy@B.example',
      role: Role.TENANT_USER,
    });
    assert.equal(invitation?.email, 'judy@b.example');
    assert.equal((await admin.client.listInvitations({})).invitations.length, 1);
    const judy = browser();
    await assert.rejects(
      judy.client.acceptInvitation({ token, password: 'short' }),
      connectError(Code.InvalidArgument, /password/),
    );
    const accepted = await judy.client.acceptInvitation({
      token,
      password: 'judy password 1',
      displayName: 'Judy',
    });
    assert.equal(accepted.user?.tenantId, 't_b');
    assert.equal((await judy.client.getCurrentUser({})).user?.displayName, 'Judy');
    await assert.rejects(
      browser().client.acceptInvitation({ token, password: 'judy password 1' }),
      connectError(Code.NotFound),
    );
    await browser().signIn('judy@b.example', 'judy password 1');
    assert.equal((await admin.client.listInvitations({})).invitations.length, 0);
  });

  test("a tenant admin sees nothing of another tenant's users and cannot grant platform_admin", async () => {
    const other = await addUser('t_b', 'tenant_user', 'kim@b.example');
    await addUser('t_a', 'tenant_admin', 'lee@a.example');
    const admin = browser();
    await admin.signIn('lee@a.example');
    await assert.rejects(admin.client.getUser({ userId: other }), connectError(Code.NotFound));
    await assert.rejects(admin.client.deleteUser({ userId: other }), connectError(Code.NotFound));
    await assert.rejects(admin.client.listUsers({ tenantId: 't_b' }), connectError(Code.NotFound));
    await assert.rejects(admin.client.listSessions({ userId: other }), connectError(Code.NotFound));
    await assert.rejects(
      admin.client.inviteUser({ email: 'x@a.example', role: Role.PLATFORM_ADMIN }),
      connectError(Code.PermissionDenied, /cannot grant role platform_admin/),
    );
  });

  test("UpdateUser changes name and role within the caller's own; a tenant_user manages no one", async () => {
    const target = await addUser('t_a', 'tenant_user', 'quinn@a.example');
    await addUser('t_a', 'tenant_admin', 'rita@a.example');
    const admin = browser();
    await admin.signIn('rita@a.example');
    const { user } = await admin.client.updateUser({
      user: { userId: target, displayName: 'Quinn', role: Role.TENANT_ADMIN },
      updateMask: { paths: ['display_name', 'role'] },
    });
    assert.deepEqual([user?.displayName, user?.role], ['Quinn', Role.TENANT_ADMIN]);
    await assert.rejects(
      admin.client.updateUser({
        user: { userId: target, role: Role.PLATFORM_ADMIN },
        updateMask: { paths: ['role'] },
      }),
      connectError(Code.PermissionDenied),
    );
    await addUser('t_a', 'tenant_user', 'sam@a.example');
    const plain = browser();
    await plain.signIn('sam@a.example');
    await assert.rejects(
      plain.client.inviteUser({ email: 'y@a.example', role: Role.TENANT_USER }),
      connectError(Code.PermissionDenied, /needs role tenant_admin/),
    );
    await assert.rejects(plain.client.deleteUser({ userId: target }), connectError(Code.PermissionDenied));
  });

  test('deleting a user ends its sessions', async () => {
    const victim = await addUser('t_a', 'tenant_user', 'mia@a.example');
    await addUser('t_a', 'tenant_admin', 'ned@a.example');
    const session = browser();
    await session.signIn('mia@a.example');
    const admin = browser();
    await admin.signIn('ned@a.example');
    await admin.client.deleteUser({ userId: victim });
    await assert.rejects(session.client.getCurrentUser({}), connectError(Code.Unauthenticated));
    await assert.rejects(admin.client.getUser({ userId: victim }), connectError(Code.NotFound));
  });
});
