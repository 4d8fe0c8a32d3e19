// My account: change the password (which ends the user's other sessions), and every place the user
// is signed in, each of which can be signed out from here at once.
import type { Session } from '@cphone/proto/api';
import { html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { formatTime, t } from '../i18n.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';

export class CpAccount extends LocalizedElement {
  static override properties = {
    sessions: { state: true },
    current: { state: true },
    notice: { state: true },
    problem: { state: true },
  };
  declare sessions: Session[];
  declare current: string;
  declare notice: string;
  declare problem: Problem | undefined;

  static override styles = [shared];

  constructor() {
    super();
    this.sessions = [];
    this.current = '';
    this.notice = '';
    this.problem = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const [me, list] = await Promise.all([api.users.getCurrentUser({}), api.users.listSessions({})]);
      this.current = me.sessionId;
      this.sessions = list.sessions;
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async changePassword(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    this.problem = undefined;
    try {
      await api.users.changePassword({
        currentPassword: String(data.get('current') ?? ''),
        newPassword: String(data.get('new') ?? ''),
      });
      form.reset();
      this.notice = t('account.changed');
      await this.load();
    } catch (error) {
      this.problem = problemOf(error, 'sign-in');
    }
  }

  private async end(session: Session): Promise<void> {
    try {
      await api.users.revokeSession({ sessionId: session.sessionId });
      this.notice = t('account.ended');
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  override render() {
    return html`<h1>${t('account.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      ${this.notice ? html`<div class="notice" role="status">${this.notice}</div>` : nothing}
      <h2>${t('account.password')}</h2>
      <form class="row card" @submit=${this.changePassword}>
        <input
          name="current"
          type="password"
          autocomplete="current-password"
          aria-label=${t('account.current')}
          placeholder=${t('account.current')}
          required
        />
        <input
          name="new"
          type="password"
          autocomplete="new-password"
          minlength="10"
          aria-label=${t('account.new')}
          placeholder=${t('account.new')}
          required
        />
        <button class="primary">${t('account.change')}</button>
      </form>
      <h2>${t('account.sessions')}</h2>
      <table>
        <thead>
          <tr>
            <th>${t('account.from')}</th><th>${t('account.started')}</th><th>${t('account.lastSeen')}</th><th></th>
          </tr>
        </thead>
        <tbody>
          ${this.sessions.map(
            (s) => html`<tr data-session=${s.sessionId}>
              <td>${s.clientAddress} <span class="muted">${s.userAgent}</span></td>
              <td>${formatTime(s.createTime)}</td>
              <td>${formatTime(s.lastSeenTime)}</td>
              <td>
                ${
                  s.sessionId === this.current
                    ? html`<span class="badge">${t('account.thisSession')}</span>`
                    : html`<button @click=${() => this.end(s)}>${t('account.endSession')}</button>`
                }
              </td>
            </tr>`,
          )}
        </tbody>
      </table>`;
  }
}

customElements.define('cp-account', CpAccount);
