// The console's shell: who is signed in, the navigation, the language switch, and which page the
// address (#/…) shows. Pages live in pages/; each is a custom element given what it needs.
import { Code, ConnectError } from '@connectrpc/connect';
import { Role, type User } from '@cphone/proto/api';
import { css, html, LitElement, nothing } from 'lit';
import { api, type Problem, problemOf, setCsrfToken, whenSignedOut } from './api.js';
import { LOCALES, type Locale, locale, localeEvents, setLocale, t } from './i18n.js';
import { problemBanner, shared } from './ui.js';
import './pages/sign-in.js';
import './pages/phones.js';
import './pages/phone.js';
import './pages/group.js';
import './pages/users.js';
import './pages/keys.js';
import './pages/account.js';
import './pages/usage.js';
import './pages/audit.js';

interface Route {
  page: 'phones' | 'phone' | 'group' | 'users' | 'keys' | 'usage' | 'audit' | 'account' | 'accept';
  id?: string;
  ids?: string[];
  token?: string;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [first, second] = path.split('/');
  const params = new URLSearchParams(query);
  if (first === 'phones' && second) return { page: 'phone', id: decodeURIComponent(second) };
  if (first === 'group') return { page: 'group', ids: (params.get('ids') ?? '').split(',').filter(Boolean) };
  if (
    first === 'users' ||
    first === 'keys' ||
    first === 'usage' ||
    first === 'audit' ||
    first === 'account'
  ) {
    return { page: first };
  }
  if (first === 'accept') return { page: 'accept', token: params.get('token') ?? '' };
  return { page: 'phones' };
}

export class CpApp extends LitElement {
  static override properties = {
    user: { state: true },
    tenantName: { state: true },
    route: { state: true },
    ready: { state: true },
    problem: { state: true },
  };
  declare user: User | undefined;
  declare tenantName: string;
  declare route: Route;
  declare ready: boolean;
  declare problem: Problem | undefined;

  static override styles = [
    shared,
    css`
      :host { min-height: 100vh; background: #f6f7fb; }
      header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #101828; color: #fff; }
      header .brand { font-weight: 600; font-size: 16px; }
      header nav { display: flex; gap: 4px; flex: 1; }
      header nav a { color: #d0d5dd; text-decoration: none; padding: 6px 10px; border-radius: 6px; }
      header nav a[aria-current='page'] { background: #344054; color: #fff; }
      header select, header button { background: #1d2939; color: #fff; border-color: #475467; }
      main { padding: 20px; max-width: 1280px; margin: 0 auto; }
    `,
  ];

  constructor() {
    super();
    this.user = undefined;
    this.tenantName = '';
    this.route = parseRoute(location.hash);
    this.ready = false;
    this.problem = undefined;
  }

  private readonly onHash = () => {
    this.route = parseRoute(location.hash);
  };
  private readonly onLocale = () => this.requestUpdate();

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    localeEvents.addEventListener('locale-changed', this.onLocale);
    whenSignedOut(() => {
      this.user = undefined;
      setCsrfToken('');
    });
    document.documentElement.lang = locale();
    void this.loadSession();
  }

  override disconnectedCallback(): void {
    window.removeEventListener('hashchange', this.onHash);
    localeEvents.removeEventListener('locale-changed', this.onLocale);
    super.disconnectedCallback();
  }

  private async loadSession(): Promise<void> {
    try {
      const me = await api.users.getCurrentUser({});
      setCsrfToken(me.csrfToken);
      this.user = me.user;
      this.tenantName = me.tenantDisplayName;
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Unauthenticated) this.problem = problemOf(error);
      this.user = undefined;
    } finally {
      this.ready = true;
    }
  }

  private async signOut(): Promise<void> {
    try {
      await api.users.signOut({});
    } catch (error) {
      this.problem = problemOf(error);
      return;
    }
    setCsrfToken('');
    this.user = undefined;
  }

  private signedIn(event: CustomEvent<{ user: User; csrfToken: string }>): void {
    setCsrfToken(event.detail.csrfToken);
    this.user = event.detail.user;
    this.problem = undefined;
    void this.loadSession();
  }

  private isAdmin(): boolean {
    const role = this.user?.role;
    return role === Role.TENANT_ADMIN || role === Role.PLATFORM_ADMIN;
  }

  private link(href: string, label: string, current: boolean) {
    return html`<a href=${href} aria-current=${current ? 'page' : 'false'}>${label}</a>`;
  }

  private page() {
    const r = this.route;
    switch (r.page) {
      case 'phone':
        return html`<cp-phone .deviceId=${r.id ?? ''}></cp-phone>`;
      case 'group':
        return html`<cp-group .deviceIds=${r.ids ?? []}></cp-group>`;
      case 'users':
        return this.isAdmin() ? html`<cp-users .me=${this.user}></cp-users>` : html`<cp-phones></cp-phones>`;
      case 'account':
        return html`<cp-account></cp-account>`;
      case 'keys':
        return this.isAdmin() ? html`<cp-keys .me=${this.user}></cp-keys>` : html`<cp-phones></cp-phones>`;
      case 'usage':
        return this.isAdmin() ? html`<cp-usage .me=${this.user}></cp-usage>` : html`<cp-phones></cp-phones>`;
      case 'audit':
        return this.isAdmin() ? html`<cp-audit></cp-audit>` : html`<cp-phones></cp-phones>`;
      default:
        return html`<cp-phones></cp-phones>`;
    }
  }

  override render() {
    const languages = html`<label
      >${t('app.language')}
      <select
        aria-label=${t('app.language')}
        @change=${(e: Event) => setLocale((e.target as HTMLSelectElement).value as Locale)}
      >
        ${LOCALES.map((l) => html`<option value=${l.id} ?selected=${l.id === locale()}>${l.name}</option>`)}
      </select></label
    >`;
    if (!this.ready) return html`<main>${t('app.loading')}</main>`;
    if (!this.user) {
      return html`<header><span class="brand">${t('app.title')}</span><nav></nav>${languages}</header>
        <main>${problemBanner(this.problem)}<cp-sign-in
          .invitation=${this.route.page === 'accept' ? (this.route.token ?? '') : ''}
          @signed-in=${this.signedIn}
        ></cp-sign-in></main>`;
    }
    const p = this.route.page;
    return html`<header>
        <span class="brand">${t('app.title')}</span>
        <nav aria-label=${t('nav.main')}>
          ${this.link('#/phones', t('nav.phones'), p === 'phones' || p === 'phone')}
          ${this.link('#/group', t('nav.group'), p === 'group')}
          ${this.isAdmin() ? this.link('#/users', t('nav.users'), p === 'users') : nothing}
          ${this.isAdmin() ? this.link('#/keys', t('nav.keys'), p === 'keys') : nothing}
          ${this.isAdmin() ? this.link('#/usage', t('nav.usage'), p === 'usage') : nothing}
          ${this.isAdmin() ? this.link('#/audit', t('nav.audit'), p === 'audit') : nothing}
          ${this.link('#/account', t('nav.account'), p === 'account')}
        </nav>
        <span class="muted" data-testid="who">${t('app.signedInAs', { email: this.user.email })}${this.tenantName ? ` · ${this.tenantName}` : ''}</span>
        ${languages}
        <button @click=${this.signOut}>${t('app.signOut')}</button>
      </header>
      <main>${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}${this.page()}</main>`;
  }
}

customElements.define('cp-app', CpApp);
