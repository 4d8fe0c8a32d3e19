// Group control: the selected phones in a grid of small live players, each on its own CONTROL
// session. Input on the leading phone (touches, keys, text, buttons) is mirrored to every other
// phone through its own player; a touch carries its position within the picture, so it lands at
// the same relative place on phones of any screen size. A player that is not connected, or whose
// input channel is backed up, is marked and skipped: it never holds the others back.
import { type Device, DeviceState } from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { repeat } from 'lit/directives/repeat.js';
import { api, type Problem, problemOf } from '../api.js';
import { t } from '../i18n.js';
import { sessionProvider } from '../stream.js';
import { LocalizedElement, problemBanner, shared, stateBadge } from '../ui.js';

/** What the console needs of a <cphone-player> to mirror input into it. */
interface MirrorTarget extends HTMLElement {
  /** False when the player cannot send now (not connected, or its input channel is not open). */
  sendInput(message: unknown): boolean;
  /** Bytes waiting in the input channel; a player far behind is skipped. */
  readonly inputBacklog: number;
}

/** A follower with this much input still unsent is marked behind and skipped until it drains. */
const BEHIND_BYTES = 64 * 1024;

type Mark = 'ok' | 'behind' | 'failed';

export class CpGroup extends LocalizedElement {
  static override properties = {
    deviceIds: { attribute: false },
    devices: { state: true },
    leader: { state: true },
    mirror: { state: true },
    marks: { state: true },
    problem: { state: true },
  };
  declare deviceIds: string[];
  declare devices: Device[];
  declare leader: string;
  declare mirror: boolean;
  declare marks: Map<string, Mark>;
  declare problem: Problem | undefined;

  static override styles = [
    shared,
    css`
      .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }
      .cell { background: #fff; border: 2px solid #e4e7ee; border-radius: 10px; padding: 6px; }
      .cell.leader { border-color: #2563eb; }
      .cell.behind { border-color: #f79009; }
      .cell.failed { border-color: #d92d20; }
      cphone-player { width: 100%; height: 380px; background: #000; border-radius: 8px; overflow: hidden; }
      .cell header { display: flex; justify-content: space-between; align-items: center; gap: 6px; margin-bottom: 4px; }
    `,
  ];

  constructor() {
    super();
    this.deviceIds = [];
    this.devices = [];
    this.leader = '';
    this.mirror = true;
    this.marks = new Map();
    this.problem = undefined;
  }

  override willUpdate(changed: Map<string, unknown>): void {
    if (changed.has('deviceIds')) {
      this.leader = this.deviceIds[0] ?? '';
      void this.load();
    }
  }

  private async load(): Promise<void> {
    const got = await Promise.allSettled(
      this.deviceIds.map((deviceId) => api.devices.getDevice({ deviceId })),
    );
    this.devices = got.flatMap((r) => (r.status === 'fulfilled' && r.value.device ? [r.value.device] : []));
    const failed = got.find((r) => r.status === 'rejected');
    if (failed) this.problem = problemOf(failed.reason);
  }

  private setMark(deviceId: string, mark: Mark): void {
    if (this.marks.get(deviceId) === mark) return;
    this.marks = new Map(this.marks).set(deviceId, mark);
  }

  /** The leader sent `message` to its phone: send it to every other phone that can take it now. */
  private onLeaderInput(event: Event): void {
    if (!this.mirror) return;
    const source = event.target as MirrorTarget;
    if (source.dataset.device !== this.leader) return;
    const message = (event as CustomEvent).detail;
    for (const player of this.renderRoot.querySelectorAll<MirrorTarget>('cphone-player')) {
      const deviceId = player.dataset.device ?? '';
      if (deviceId === this.leader) continue;
      if (player.inputBacklog > BEHIND_BYTES) {
        this.setMark(deviceId, 'behind');
        continue;
      }
      this.setMark(deviceId, player.sendInput(message) ? 'ok' : 'failed');
    }
  }

  override render() {
    if (!this.deviceIds.length)
      return html`<h1>${t('group.title')}</h1><p class="muted">${t('group.empty')}</p>`;
    return html`<h1>${t('group.title')}</h1>
      <p class="muted">${t('group.hint')}</p>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      <div class="row">
        <label
          ><input
            type="checkbox"
            .checked=${this.mirror}
            @change=${(e: Event) => {
              this.mirror = (e.target as HTMLInputElement).checked;
            }}
          />
          ${t('group.mirror')}</label
        >
      </div>
      <div class="grid" @cphone-input=${this.onLeaderInput}>
        ${repeat(
          this.devices,
          (d) => d.deviceId,
          (d) => {
            const mark = this.marks.get(d.deviceId);
            const isLeader = d.deviceId === this.leader;
            return html`<div class="cell ${isLeader ? 'leader' : (mark ?? '')}" data-cell=${d.deviceId}>
              <header>
                <strong>${d.displayName || d.deviceId}</strong>
                ${stateBadge(DeviceState[d.state])}
                <label
                  ><input
                    type="radio"
                    name="leader"
                    .checked=${isLeader}
                    @change=${() => {
                      this.leader = d.deviceId;
                    }}
                  />
                  ${t('group.leader')}</label
                >
              </header>
              ${
                !isLeader && mark && mark !== 'ok'
                  ? html`<span class="badge" data-mark=${mark}>${t(mark === 'behind' ? 'group.behind' : 'group.failed')}</span>`
                  : nothing
              }
              <cphone-player
                data-device=${d.deviceId}
                lang=${document.documentElement.lang}
                quality="480p"
                .tokenProvider=${sessionProvider(d.deviceId)}
              ></cphone-player>
            </div>`;
          },
        )}
      </div>`;
  }
}

customElements.define('cp-group', CpGroup);
