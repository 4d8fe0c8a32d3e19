// The audit log of the admin's tenant and its customers, newest first: who did what to which
// resource, and how it ended. Filters go to the server (ListAuditEvents); "Load more" follows the
// page token.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { ActorKind, type AuditEvent, type ListAuditEventsRequest } from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { formatTime, t } from '../i18n.js';
import type { MessageKey } from '../messages.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';

/** A Connect code as audit events spell it: snake_case, "ok" for success. */
function outcomeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export const OUTCOMES: readonly string[] = [
  'ok',
  ...Object.values(Code)
    .filter((v): v is Code => typeof v === 'number')
    .map(outcomeName),
];

const PAGE_SIZE = 100;

type Filters = Pick<ListAuditEventsRequest, 'outcome' | 'method' | 'resourceId' | 'actorId'> & {
  /** A local date and time from the form ("2026-12-01T09:30"); empty for no lower bound. */
  since: string;
};

const NO_FILTERS: Filters = { outcome: '', method: '', resourceId: '', actorId: '', since: '' };

export class CpAudit extends LocalizedElement {
  static override properties = {
    events: { state: true },
    nextPageToken: { state: true },
    filters: { state: true },
    loading: { state: true },
    problem: { state: true },
  };
  declare events: AuditEvent[];
  declare nextPageToken: string;
  declare filters: Filters;
  declare loading: boolean;
  declare problem: Problem | undefined;

  static override styles = [
    shared,
    css`
      form { margin-bottom: 12px; }
      td { font-size: 13px; }
      td.message { max-width: 320px; overflow-wrap: anywhere; }
      .badge.ok { background: #dcfae6; color: #067647; }
      .badge.failed { background: #fee4e2; color: #b42318; }
    `,
  ];

  constructor() {
    super();
    this.events = [];
    this.nextPageToken = '';
    this.filters = NO_FILTERS;
    this.loading = false;
    this.problem = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(pageToken = ''): Promise<void> {
    const { since, ...filters } = this.filters;
    this.loading = true;
    try {
      const answer = await api.audit.listAuditEvents({
        ...filters,
        includeDescendants: true,
        pageSize: PAGE_SIZE,
        pageToken,
        ...(since ? { startTime: timestampFromDate(new Date(since)) } : {}),
      });
      this.events = pageToken ? [...this.events, ...answer.auditEvents] : answer.auditEvents;
      this.nextPageToken = answer.nextPageToken;
      this.problem = undefined;
    } catch (error) {
      this.problem = problemOf(error);
    } finally {
      this.loading = false;
    }
  }

  private filter(event: SubmitEvent): void {
    event.preventDefault();
    const data = new FormData(event.target as HTMLFormElement);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    this.filters = {
      outcome: text('outcome'),
      method: text('method'),
      resourceId: text('resourceId'),
      actorId: text('actorId'),
      since: text('since'),
    };
    void this.load();
  }

  private clear(event: Event): void {
    (event.target as HTMLButtonElement).form?.reset();
    this.filters = NO_FILTERS;
    void this.load();
  }

  private row(e: AuditEvent) {
    const kind = ActorKind[e.actor?.kind ?? ActorKind.UNSPECIFIED] ?? 'UNSPECIFIED';
    const resource = [e.resourceType, e.resourceId].filter(Boolean).join('/');
    return html`<tr data-audit-event=${e.auditEventId}>
      <td>${formatTime(e.createTime)}</td>
      <td>${t(`audit.actor.${kind}` as MessageKey)}${e.actor?.id ? html` <code>${e.actor.id}</code>` : nothing}</td>
      <td><code>${e.method.replace(/^cphone\.api\.v1\./, '')}</code></td>
      <td><code>${resource}</code></td>
      <td><span class="badge ${e.outcome === 'ok' ? 'ok' : 'failed'}" data-outcome=${e.outcome}>${e.outcome}</span></td>
      <td>${e.remoteAddress}</td>
      <td class="message">${e.message}</td>
    </tr>`;
  }

  override render() {
    return html`<h1>${t('audit.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      <form class="row card" @submit=${this.filter}>
        <select name="outcome" aria-label=${t('audit.outcome')}>
          <option value="">${t('audit.allOutcomes')}</option>
          ${OUTCOMES.map((o) => html`<option value=${o}>${o}</option>`)}
        </select>
        <input name="method" aria-label=${t('audit.method')} placeholder=${t('audit.methodHint')} />
        <input name="resourceId" aria-label=${t('audit.resourceId')} placeholder=${t('audit.resourceId')} />
        <input name="actorId" aria-label=${t('audit.actorId')} placeholder=${t('audit.actorId')} />
        <label>${t('audit.since')} <input name="since" type="datetime-local" /></label>
        <button class="primary">${t('audit.apply')}</button>
        <button type="button" @click=${this.clear}>${t('audit.clear')}</button>
      </form>
      ${
        this.events.length === 0 && !this.loading
          ? html`<p class="muted" role="status">${t('audit.empty')}</p>`
          : html`<table>
            <thead>
              <tr>
                <th>${t('audit.time')}</th><th>${t('audit.actor')}</th><th>${t('audit.method')}</th>
                <th>${t('audit.resource')}</th><th>${t('audit.outcome')}</th><th>${t('audit.remote')}</th>
                <th>${t('audit.message')}</th>
              </tr>
            </thead>
            <tbody>
              ${this.events.map((e) => this.row(e))}
            </tbody>
          </table>`
      }
      ${
        this.nextPageToken
          ? html`<button ?disabled=${this.loading} @click=${() => this.load(this.nextPageToken)}>${t('audit.more')}</button>`
          : nothing
      }`;
  }
}

customElements.define('cp-audit', CpAudit);
