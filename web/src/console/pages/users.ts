// Users of the admin's tenant: list, invite (a one-time link to set a password), remove (their
// sessions end at once), and the invitations not yet accepted.
import type { Invitation, User } from '@cphone/proto/api';
import { html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { formatTime, t } from '../i18n.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';
import { ASSIGNABLE_ROLES, roleName } from './keys.js';

export class CpUsers extends LocalizedElement {
  static override properties = {
    me: { attribute: false },
    users: { state: true },
    invitations: { state: true },
    link: { state: true },
    problem: { state: true },
  };
  declare me: User | undefined;
  declare users: User[];
  declare invitations: Invitation[];
  declare link: { email: string; url: string; when: string } | undefined;
  declare problem: Problem | undefined;

  static override styles = [shared];

  constructor() {
    super();
    this.me = undefined;
    this.users = [];
    this.invitations = [];
    this.link = undefined;
    this.problem = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    const tenantId = this.me?.tenantId ?? '';
    try {
      const [users, invitations] = await Promise.all([
        api.users.listUsers({ tenantId, pageSize: 200 }),
        api.users.listInvitations({ tenantId }),
      ]);
      this.users = users.users;
      this.invitations = invitations.invitations;
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async invite(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    try {
      const made = await api.users.inviteUser({
        tenantId: this.me?.tenantId ?? '',
        email: String(data.get('email') ?? ''),
        displayName: String(data.get('name') ?? ''),
        role: Number(data.get('role')),
      });
      const url = `${location.origin}${location.pathname}#/accept?token=${encodeURIComponent(made.token)}`;
      this.link = {
        email: made.invitation?.email ?? '',
        url,
        when: formatTime(made.invitation?.expireTime),
      };
      form.reset();
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async removeUser(user: User): Promise<void> {
    if (!confirm(t('users.confirmRemove', { email: user.email }))) return;
    try {
      await api.users.deleteUser({ userId: user.userId });
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async revoke(invitation: Invitation): Promise<void> {
    try {
      await api.users.revokeInvitation({ invitationId: invitation.invitationId });
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  override render() {
    return html`<h1>${t('users.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      ${
        this.link
          ? html`<div class="notice" role="status">
            ${t('users.inviteLink', { email: this.link.email, when: this.link.when })}<br /><code>${this.link.url}</code>
          </div>`
          : nothing
      }
      <h2>${t('users.invite')}</h2>
      <form class="row card" @submit=${this.invite}>
        <input name="email" type="email" aria-label=${t('users.email')} placeholder=${t('users.email')} required />
        <input name="name" aria-label=${t('users.name')} placeholder=${t('users.name')} />
        <select name="role" aria-label=${t('users.role')}>
          ${ASSIGNABLE_ROLES.map((r) => html`<option value=${r}>${roleName(r)}</option>`)}
        </select>
        <button class="primary">${t('users.inviteSend')}</button>
      </form>
      <table>
        <thead>
          <tr>
            <th>${t('users.email')}</th><th>${t('users.name')}</th><th>${t('users.role')}</th>
            <th>${t('users.created')}</th><th>${t('users.lastSignIn')}</th><th></th>
          </tr>
        </thead>
        <tbody>
          ${this.users.map(
            (u) => html`<tr>
              <td>${u.email}</td>
              <td>${u.displayName}</td>
              <td>${roleName(u.role)}</td>
              <td>${formatTime(u.createTime)}</td>
              <td>${formatTime(u.lastSignInTime) || t('users.never')}</td>
              <td>
                ${
                  u.userId === this.me?.userId
                    ? nothing
                    : html`<button class="danger" @click=${() => this.removeUser(u)}>${t('users.remove')}</button>`
                }
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${
        this.invitations.length
          ? html`<h2>${t('users.invitations')}</h2>
            <table>
              <tbody>
                ${this.invitations.map(
                  (i) => html`<tr>
                    <td>${i.email}</td>
                    <td>${roleName(i.role)}</td>
                    <td>${formatTime(i.expireTime)}</td>
                    <td><button @click=${() => this.revoke(i)}>${t('users.revoke')}</button></td>
                  </tr>`,
                )}
              </tbody>
            </table>`
          : nothing
      }`;
  }
}

customElements.define('cp-users', CpUsers);
