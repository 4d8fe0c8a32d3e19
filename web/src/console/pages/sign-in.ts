// Sign in with email and password, or join through an invitation link (#/accept?token=…). The
// session lands in an HttpOnly cookie; the page hands the user and the CSRF token to the shell
// through a `signed-in` event.
import { css, html } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { t } from '../i18n.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';

export class CpSignIn extends LocalizedElement {
  static override properties = {
    busy: { state: true },
    problem: { state: true },
    invitation: { attribute: false },
  };
  /** The invitation token when the page was opened from an invitation link. */
  declare invitation: string;
  declare busy: boolean;
  declare problem: Problem | undefined;

  static override styles = [
    shared,
    css`
      form { max-width: 360px; margin: 60px auto; display: grid; gap: 12px; }
      label { display: grid; gap: 4px; }
    `,
  ];

  constructor() {
    super();
    this.busy = false;
    this.problem = undefined;
    this.invitation = '';
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    this.busy = true;
    this.problem = undefined;
    try {
      const password = String(form.get('password') ?? '');
      const answer = this.invitation
        ? await api.users.acceptInvitation({
            token: this.invitation,
            password,
            displayName: String(form.get('name') ?? ''),
          })
        : await api.users.signIn({ email: String(form.get('email') ?? ''), password });
      if (this.invitation) history.replaceState(null, '', '#/phones');
      this.dispatchEvent(
        new CustomEvent('signed-in', {
          detail: { user: answer.user, csrfToken: answer.csrfToken },
          bubbles: true,
          composed: true,
        }),
      );
    } catch (error) {
      this.problem = problemOf(error, 'sign-in');
    } finally {
      this.busy = false;
    }
  }

  override render() {
    if (this.invitation) {
      return html`<form class="card" @submit=${this.submit}>
        <h1>${t('accept.title')}</h1>
        <p class="muted">${t('accept.hint')}</p>
        ${problemBanner(this.problem)}
        <label>${t('accept.name')}<input name="name" autocomplete="name" /></label>
        <label
          >${t('signIn.password')}<input name="password" type="password" autocomplete="new-password" minlength="10" required
        /></label>
        <button class="primary" type="submit" ?disabled=${this.busy}>${t('accept.submit')}</button>
      </form>`;
    }
    return html`<form class="card" @submit=${this.submit}>
      <h1>${t('signIn.title')}</h1>
      ${problemBanner(this.problem)}
      <label>${t('signIn.email')}<input name="email" type="email" autocomplete="username" required /></label>
      <label
        >${t('signIn.password')}<input name="password" type="password" autocomplete="current-password" required
      /></label>
      <button class="primary" type="submit" ?disabled=${this.busy}>
        ${this.busy ? t('signIn.working') : t('signIn.submit')}
      </button>
    </form>`;
  }
}

customElements.define('cp-sign-in', CpSignIn);
