// What the admin's tenant and its customers used in one month, as the chosen time zone counts the
// month: by day (with a bar per day), by phone, or by customer tenant; the totals row is the
// server's own sum over the whole month. "Download CSV" streams the same selection from ExportUsage.
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  type QueryUsageRequest,
  UsageBucket,
  UsageExportFormat,
  UsageGrouping,
  type UsageRecord,
  type User,
} from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';
import { api, type Problem, problemOf } from '../api.js';
import { locale, t } from '../i18n.js';
import type { MessageKey } from '../messages.js';
import { LocalizedElement, problemBanner, shared } from '../ui.js';
import { saveBlob } from '../upload.js';
import { browserZone, formatDay, isZone, knownZones, monthIn, monthRange } from '../zoned-time.js';

export type UsageView = 'day' | 'device' | 'tenant';

const VIEWS: Record<UsageView, { groupBy: UsageGrouping; bucket: UsageBucket; label: MessageKey }> = {
  day: { groupBy: UsageGrouping.SUBTREE, bucket: UsageBucket.DAY, label: 'usage.byDay' },
  device: { groupBy: UsageGrouping.DEVICE, bucket: UsageBucket.RANGE, label: 'usage.byDevice' },
  tenant: { groupBy: UsageGrouping.TENANT, bucket: UsageBucket.RANGE, label: 'usage.byTenant' },
};

type Measure =
  | 'deviceMinutes'
  | 'stoppedDeviceMinutes'
  | 'vcpuMinutes'
  | 'memoryGibMinutes'
  | 'storageGibMinutes'
  | 'viewerMinutes';

const MEASURES: readonly { field: Measure; label: MessageKey }[] = [
  { field: 'deviceMinutes', label: 'usage.deviceMinutes' },
  { field: 'stoppedDeviceMinutes', label: 'usage.stoppedMinutes' },
  { field: 'vcpuMinutes', label: 'usage.vcpuMinutes' },
  { field: 'memoryGibMinutes', label: 'usage.memoryMinutes' },
  { field: 'storageGibMinutes', label: 'usage.storageMinutes' },
  { field: 'viewerMinutes', label: 'usage.viewerMinutes' },
];

const PAGE_SIZE = 1000;

export class CpUsage extends LocalizedElement {
  static override properties = {
    me: { attribute: false },
    month: { state: true },
    zone: { state: true },
    view: { state: true },
    records: { state: true },
    total: { state: true },
    nextPageToken: { state: true },
    customers: { state: true },
    loading: { state: true },
    exporting: { state: true },
    problem: { state: true },
  };
  declare me: User | undefined;
  declare month: string;
  declare zone: string;
  declare view: UsageView;
  declare records: UsageRecord[];
  declare total: UsageRecord | undefined;
  declare nextPageToken: string;
  /** Display names of the tenants below the admin's, by id; empty when it has none. */
  declare customers: Map<string, string>;
  declare loading: boolean;
  declare exporting: boolean;
  declare problem: Problem | undefined;

  static override styles = [
    shared,
    css`
      form { margin-bottom: 12px; }
      td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
      td.bar { width: 22%; }
      .bar div { height: 10px; border-radius: 5px; background: #2563eb; min-width: 2px; }
      tfoot td { font-weight: 600; border-top: 2px solid #c5cbd6; }
      .empty { padding: 24px 0; }
    `,
  ];

  constructor() {
    super();
    this.me = undefined;
    this.zone = browserZone();
    this.month = monthIn(this.zone);
    this.view = 'day';
    this.records = [];
    this.total = undefined;
    this.nextPageToken = '';
    this.customers = new Map();
    this.loading = false;
    this.exporting = false;
    this.problem = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.loadCustomers();
    void this.load();
  }

  private async loadCustomers(): Promise<void> {
    try {
      const answer = await api.tenants.listTenants({ recursive: true, pageSize: 1000 });
      this.customers = new Map(answer.tenants.map((x) => [x.tenantId, x.displayName]));
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  /** The selection the table and the export share; undefined (with the problem shown) when it is not valid. */
  private selection(): Omit<QueryUsageRequest, '$typeName' | 'pageSize' | 'pageToken'> | undefined {
    if (!isZone(this.zone)) {
      this.problem = {
        key: 'usage.badZone',
        params: { zone: this.zone },
        requestId: undefined,
        code: undefined,
      };
      return undefined;
    }
    const { start, end } = monthRange(this.month, this.zone);
    const { groupBy, bucket } = VIEWS[this.view];
    return {
      tenantId: '',
      includeDescendants: true,
      startTime: timestampFromDate(start),
      endTime: timestampFromDate(end),
      groupBy,
      bucket,
      deviceId: '',
      timeZone: this.zone,
      labelKey: '',
    };
  }

  /** Counts loads, so the answer to a selection changed since is dropped rather than shown. */
  private loads = 0;

  private async load(pageToken = ''): Promise<void> {
    const selection = this.selection();
    if (!selection) return;
    const load = ++this.loads;
    this.loading = true;
    try {
      const answer = await api.usage.queryUsage({ ...selection, pageSize: PAGE_SIZE, pageToken });
      if (load !== this.loads) return;
      this.records = pageToken ? [...this.records, ...answer.usageRecords] : answer.usageRecords;
      this.total = answer.total;
      this.nextPageToken = answer.nextPageToken;
      this.problem = undefined;
    } catch (error) {
      if (load === this.loads) this.problem = problemOf(error);
    } finally {
      if (load === this.loads) this.loading = false;
    }
  }

  private async downloadCsv(): Promise<void> {
    const selection = this.selection();
    if (!selection) return;
    this.exporting = true;
    try {
      const chunks: Uint8Array<ArrayBuffer>[] = [];
      for await (const part of api.usage.exportUsage({ ...selection, format: UsageExportFormat.CSV })) {
        chunks.push(part.csvChunk as Uint8Array<ArrayBuffer>);
      }
      saveBlob(new Blob(chunks, { type: 'text/csv' }), `usage-${this.month}-${this.view}.csv`);
    } catch (error) {
      this.problem = problemOf(error);
    } finally {
      this.exporting = false;
    }
  }

  private changed(apply: () => void): void {
    apply();
    void this.load();
  }

  private rowLabel(r: UsageRecord) {
    switch (this.view) {
      case 'day':
        return r.startTime ? formatDay(timestampDate(r.startTime), this.zone, locale()) : '';
      case 'device':
        return html`<a href="#/phones/${encodeURIComponent(r.deviceId)}"><code>${r.deviceId}</code></a>`;
      case 'tenant':
        return r.tenantId === this.me?.tenantId
          ? t('usage.ownTenant')
          : (this.customers.get(r.tenantId) ?? r.tenantId);
    }
  }

  private number(value: number): string {
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(value);
  }

  private table() {
    if (this.records.length === 0) {
      return this.loading ? nothing : html`<p class="muted empty" role="status">${t('usage.empty')}</p>`;
    }
    const bars = this.view === 'day';
    const widest = Math.max(...this.records.map((r) => r.deviceMinutes), 0);
    return html`<table data-testid="usage-table">
      <thead>
        <tr>
          <th>${t(`usage.column.${this.view}` as MessageKey)}</th>
          ${bars ? html`<th>${t('usage.bar')}</th>` : nothing}
          ${MEASURES.map((m) => html`<th class="number">${t(m.label)}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${this.records.map(
          (r) => html`<tr data-usage-row>
            <td>${this.rowLabel(r)}</td>
            ${
              bars
                ? html`<td class="bar" aria-hidden="true"><div
                    style=${styleMap({ width: `${widest > 0 ? (r.deviceMinutes / widest) * 100 : 0}%` })}
                  ></div></td>`
                : nothing
            }
            ${MEASURES.map((m) => html`<td class="number">${this.number(r[m.field])}</td>`)}
          </tr>`,
        )}
      </tbody>
      <tfoot>
        <tr data-usage-total>
          <td>${t('usage.total')}</td>
          ${bars ? html`<td></td>` : nothing}
          ${MEASURES.map((m) => html`<td class="number">${this.number(this.total?.[m.field] ?? 0)}</td>`)}
        </tr>
      </tfoot>
    </table>`;
  }

  override render() {
    const views: UsageView[] = this.customers.size > 0 ? ['day', 'device', 'tenant'] : ['day', 'device'];
    return html`<h1>${t('usage.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      <form class="row card" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >${t('usage.month')}
          <input
            type="month"
            required
            .value=${this.month}
            @change=${(e: Event) => {
              const value = (e.target as HTMLInputElement).value;
              if (value) this.changed(() => (this.month = value));
            }}
        /></label>
        <label
          >${t('usage.zone')}
          <input
            list="zones"
            .value=${this.zone}
            @change=${(e: Event) => this.changed(() => (this.zone = (e.target as HTMLInputElement).value.trim()))}
        /></label>
        <datalist id="zones">${knownZones().map((z) => html`<option value=${z}></option>`)}</datalist>
        <label
          >${t('usage.groupBy')}
          <select
            @change=${(e: Event) =>
              this.changed(() => (this.view = (e.target as HTMLSelectElement).value as UsageView))}
          >
            ${views.map((v) => html`<option value=${v} ?selected=${v === this.view}>${t(VIEWS[v].label)}</option>`)}
          </select></label
        >
        <button type="button" ?disabled=${this.exporting} @click=${this.downloadCsv}>
          ${this.exporting ? t('usage.exporting') : t('usage.download')}
        </button>
      </form>
      ${this.table()}
      ${
        this.nextPageToken
          ? html`<button ?disabled=${this.loading} @click=${() => this.load(this.nextPageToken)}>${t('usage.more')}</button>`
          : nothing
      }`;
  }
}

customElements.define('cp-usage', CpUsage);
