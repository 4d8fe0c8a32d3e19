// API keys of the admin's tenant: list, create (the secret shown once), revoke.
import { type ApiKey, Role, type User } from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { formatTime, t } from '../i18n.js';
import type { MessageKey } from '../messages.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';

export const ASSIGNABLE_ROLES = [Role.TENANT_USER, Role.TENANT_ADMIN] as const;

export function roleName(role: Role): string {
  return t(`role.${Role[role]}` as MessageKey);
}

export class CpKeys extends LocalizedElement {
  static override properties = {
    me: { attribute: false },
    keys: { state: true },
    secret: { state: true },
    problem: { state: true },
  };
  declare me: User | undefined;
  declare keys: ApiKey[];
  declare secret: string;
  declare problem: Problem | undefined;

  static override styles = [shared, css`.secret { font-size: 14px; user-select: all; }`];

  constructor() {
    super();
    this.me = undefined;
    this.keys = [];
    this.secret = '';
    this.problem = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      this.keys = (await api.keys.listApiKeys({ tenantId: this.me?.tenantId ?? '', pageSize: 200 })).apiKeys;
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async create(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    try {
      const made = await api.keys.createApiKey({
        requestId: crypto.randomUUID(),
        tenantId: this.me?.tenantId ?? '',
        displayName: String(data.get('name') ?? ''),
        role: Number(data.get('role')) as Role,
      });
      this.secret = made.secret;
      form.reset();
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async revoke(key: ApiKey): Promise<void> {
    if (!confirm(t('keys.confirmRevoke', { name: key.displayName }))) return;
    try {
      await api.keys.revokeApiKey({ apiKeyId: key.apiKeyId });
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  override render() {
    return html`<h1>${t('keys.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      ${
        this.secret
          ? html`<div class="notice" role="status">${t('keys.secretOnce')}<br /><code class="secret">${this.secret}</code></div>`
          : nothing
      }
      <form class="row card" @submit=${this.create}>
        <input name="name" aria-label=${t('keys.name')} placeholder=${t('keys.name')} required />
        <select name="role" aria-label=${t('keys.role')}>
          ${ASSIGNABLE_ROLES.map((r) => html`<option value=${r}>${roleName(r)}</option>`)}
        </select>
        <button class="primary">${t('keys.create')}</button>
      </form>
      <table>
        <thead>
          <tr>
            <th>${t('keys.name')}</th><th>${t('keys.role')}</th><th>${t('keys.prefix')}</th>
            <th>${t('keys.created')}</th><th>${t('keys.lastUse')}</th><th></th>
          </tr>
        </thead>
        <tbody>
          ${this.keys.map(
            (k) => html`<tr>
              <td>${k.displayName}</td>
              <td>${roleName(k.role)}</td>
              <td><code>${k.secretPrefix}…</code></td>
              <td>${formatTime(k.createTime)}</td>
              <td>${formatTime(k.lastUseTime)}</td>
              <td>
                ${
                  k.revokeTime
                    ? html`<span class="muted">${t('keys.revoked')}</span>`
                    : html`<button class="danger" @click=${() => this.revoke(k)}>${t('keys.revoke')}</button>`
                }
              </td>
            </tr>`,
          )}
        </tbody>
      </table>`;
  }
}

customElements.define('cp-keys', CpKeys);
