// My phones: every phone the signed-in user may see (its tenant and the tenants under it), with
// state, name, labels and a thumbnail from the phone's latest screenshot; search and filter;
// select several to start, stop or reboot them at once, or to control them together.
import { type Device, DeviceState } from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { t } from '../i18n.js';
import type { MessageKey } from '../messages.js';
import { LocalizedElement, problemBanner, shared, stateBadge } from '../ui.js';

/** Thumbnails of running phones are taken again this often while the page is open. */
const THUMBNAIL_EVERY_MS = 15_000;
/** Screenshots asked at once: each is an ADB round trip on the phone's host. */
const THUMBNAIL_CONCURRENCY = 2;
/** Thumbnails kept fresh: the first rows of the list as shown. */
const THUMBNAIL_MAX = 48;

type BatchAction = 'start' | 'stop' | 'reboot';

export function matches(device: Device, query: string, state: string): boolean {
  if (state && DeviceState[device.state] !== state) return false;
  const q = query.trim().toLowerCase();
  if (!q) return true;
  const hay = [
    device.displayName,
    device.deviceId,
    ...Object.entries(device.labels).map(([k, v]) => `${k}=${v}`),
  ];
  return hay.some((s) => s.toLowerCase().includes(q));
}

export class CpPhones extends LocalizedElement {
  static override properties = {
    devices: { state: true },
    query: { state: true },
    stateFilter: { state: true },
    selected: { state: true },
    thumbnails: { state: true },
    problem: { state: true },
    notice: { state: true },
    busy: { state: true },
  };
  declare devices: Device[];
  declare query: string;
  declare stateFilter: string;
  declare selected: Set<string>;
  declare thumbnails: Map<string, string>;
  declare problem: Problem | undefined;
  declare notice: string;
  declare busy: boolean;
  private timer: ReturnType<typeof setInterval> | undefined;

  static override styles = [
    shared,
    css`
      .toolbar { margin-bottom: 12px; }
      .toolbar input[type='search'] { min-width: 280px; }
      .thumb { width: 54px; height: 96px; object-fit: contain; background: #101828; border-radius: 6px; display: block; }
      .thumb.none { display: flex; align-items: center; justify-content: center; color: #98a2b3; font-size: 10px; text-align: center; }
      .labels span { margin-right: 4px; }
      a { color: #1d4ed8; }
    `,
  ];

  constructor() {
    super();
    this.devices = [];
    this.query = '';
    this.stateFilter = '';
    this.selected = new Set();
    this.thumbnails = new Map();
    this.problem = undefined;
    this.notice = '';
    this.busy = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load().then(() => this.refreshThumbnails());
    this.timer = setInterval(() => void this.refreshThumbnails(), THUMBNAIL_EVERY_MS);
  }

  override disconnectedCallback(): void {
    clearInterval(this.timer);
    for (const url of this.thumbnails.values()) URL.revokeObjectURL(url);
    super.disconnectedCallback();
  }

  async load(): Promise<void> {
    try {
      const all: Device[] = [];
      let pageToken = '';
      do {
        const page = await api.devices.listDevices({ includeDescendants: true, pageSize: 500, pageToken });
        all.push(...page.devices);
        pageToken = page.nextPageToken;
      } while (pageToken);
      all.sort((a, b) => (a.displayName || a.deviceId).localeCompare(b.displayName || b.deviceId));
      this.devices = all;
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async refreshThumbnails(): Promise<void> {
    // Only what the list shows now (search and filter applied), and at most its first rows: a
    // reseller's list can hold thousands of phones, each screenshot is an ADB round trip.
    const queue = this.shown()
      .filter((d) => d.state === DeviceState.RUNNING)
      .slice(0, THUMBNAIL_MAX);
    const worker = async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        try {
          const shot = await api.devices.takeScreenshot({ deviceId: d.deviceId });
          const url = URL.createObjectURL(
            new Blob([shot.png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
          );
          const old = this.thumbnails.get(d.deviceId);
          if (old) URL.revokeObjectURL(old);
          this.thumbnails = new Map(this.thumbnails).set(d.deviceId, url);
        } catch {
          // A phone that cannot answer keeps its last thumbnail; its state says why.
        }
      }
    };
    await Promise.all(Array.from({ length: THUMBNAIL_CONCURRENCY }, worker));
  }

  private shown(): Device[] {
    return this.devices.filter((d) => matches(d, this.query, this.stateFilter));
  }

  private toggle(id: string, on: boolean): void {
    const next = new Set(this.selected);
    if (on) next.add(id);
    else next.delete(id);
    this.selected = next;
  }

  private async batch(action: BatchAction): Promise<void> {
    const ids = [...this.selected];
    this.busy = true;
    this.notice = '';
    this.problem = undefined;
    const results = await Promise.allSettled(
      ids.map((deviceId) =>
        action === 'start'
          ? api.devices.startDevice({ deviceId })
          : action === 'stop'
            ? api.devices.stopDevice({ deviceId })
            : api.devices.rebootDevice({ deviceId }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    this.notice = t('phones.batchDone', {
      action: t(`phones.${action}` as MessageKey),
      ok: results.length - failed.length,
      failed: failed.length,
    });
    const first = failed[0];
    if (first) this.problem = problemOf(first.reason);
    this.busy = false;
    await this.load();
  }

  override render() {
    const shown = this.shown();
    const states = Object.entries(DeviceState).filter(([, v]) => typeof v === 'number' && v !== 0);
    const allShownSelected = shown.length > 0 && shown.every((d) => this.selected.has(d.deviceId));
    return html`<h1>${t('phones.title')}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      ${this.notice ? html`<div class="notice" role="status">${this.notice}</div>` : nothing}
      <div class="row toolbar">
        <input
          type="search"
          aria-label=${t('phones.search')}
          placeholder=${t('phones.search')}
          .value=${this.query}
          @input=${(e: Event) => {
            this.query = (e.target as HTMLInputElement).value;
          }}
        />
        <select
          aria-label=${t('phones.stateFilter')}
          @change=${(e: Event) => {
            this.stateFilter = (e.target as HTMLSelectElement).value;
          }}
        >
          <option value="">${t('phones.allStates')}</option>
          ${states.map(([name]) => html`<option value=${name}>${t(`state.${name}` as MessageKey)}</option>`)}
        </select>
        <button @click=${() => this.load().then(() => this.refreshThumbnails())}>${t('phones.refresh')}</button>
        <span class="muted" role="status">${t('phones.selected', { count: this.selected.size })}</span>
        <button ?disabled=${!this.selected.size || this.busy} @click=${() => this.batch('start')}>
          ${t('phones.start')}
        </button>
        <button ?disabled=${!this.selected.size || this.busy} @click=${() => this.batch('stop')}>
          ${t('phones.stop')}
        </button>
        <button ?disabled=${!this.selected.size || this.busy} @click=${() => this.batch('reboot')}>
          ${t('phones.reboot')}
        </button>
        <button
          class="primary"
          ?disabled=${!this.selected.size}
          @click=${() => {
            location.hash = `#/group?ids=${[...this.selected].map(encodeURIComponent).join(',')}`;
          }}
        >
          ${t('phones.groupControl')}
        </button>
      </div>
      <table>
        <thead>
          <tr>
            <th>
              <input
                type="checkbox"
                aria-label=${t('phones.selectAll')}
                .checked=${allShownSelected}
                @change=${(e: Event) => {
                  const on = (e.target as HTMLInputElement).checked;
                  this.selected = on ? new Set(shown.map((d) => d.deviceId)) : new Set();
                }}
              />
            </th>
            <th></th>
            <th>${t('phone.details')}</th>
            <th>${t('phone.state')}</th>
            <th>${t('phone.labels')}</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${shown.map((d) => {
            const name = d.displayName || d.deviceId;
            const thumb = this.thumbnails.get(d.deviceId);
            return html`<tr data-device=${d.deviceId}>
              <td>
                <input
                  type="checkbox"
                  aria-label=${t('phones.select', { name })}
                  .checked=${this.selected.has(d.deviceId)}
                  @change=${(e: Event) => this.toggle(d.deviceId, (e.target as HTMLInputElement).checked)}
                />
              </td>
              <td>
                ${
                  thumb
                    ? html`<img class="thumb" src=${thumb} alt="" />`
                    : html`<div class="thumb none">${t('phones.noThumbnail')}</div>`
                }
              </td>
              <td><strong>${name}</strong><br /><code class="muted">${d.deviceId}</code></td>
              <td>${stateBadge(DeviceState[d.state])}</td>
              <td class="labels">${Object.entries(d.labels).map(([k, v]) => html`<span class="badge">${k}=${v}</span>`)}</td>
              <td><a href=${`#/phones/${encodeURIComponent(d.deviceId)}`}>${t('phones.open')}</a></td>
            </tr>`;
          })}
        </tbody>
      </table>
      ${shown.length === 0 ? html`<p class="muted">${t('phones.empty')}</p>` : nothing}`;
  }
}

customElements.define('cp-phones', CpPhones);
