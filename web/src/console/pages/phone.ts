// One phone: its screen live in the player, its actions, installing an app by drag and drop (with
// a progress bar, through the resumable upload API), sending a file, a screenshot download, the
// logcat with follow and filter, and its events.
import { type Artifact, ArtifactKind, type Device, type DeviceEvent, DeviceState } from '@cphone/proto/api';
import { css, html, nothing } from 'lit';
import { api, type Problem, problemOf } from '../api.js';
import { formatTime, t } from '../i18n.js';
import type { MessageKey } from '../messages.js';
import { sessionProvider } from '../stream.js';
import { LocalizedElement, problemBanner, shared, stateBadge } from '../ui.js';
import { downloadArtifact, saveBlob, uploadArtifact } from '../upload.js';

const LOGCAT_LINES = 500;
const LOGCAT_FOLLOW_MS = 2_000;
const STATE_POLL_MS = 3_000;

interface Progress {
  text: string;
  fraction: number | undefined;
}

export class CpPhone extends LocalizedElement {
  static override properties = {
    deviceId: { type: String },
    device: { state: true },
    events: { state: true },
    problem: { state: true },
    notice: { state: true },
    progress: { state: true },
    logcat: { state: true },
    follow: { state: true },
    filter: { state: true },
    dragging: { state: true },
  };
  declare deviceId: string;
  declare device: Device | undefined;
  declare events: DeviceEvent[];
  declare problem: Problem | undefined;
  declare notice: string;
  declare progress: Progress | undefined;
  declare logcat: string[];
  declare follow: boolean;
  declare filter: string;
  declare dragging: boolean;
  private timers: ReturnType<typeof setInterval>[] = [];

  static override styles = [
    shared,
    css`
      .layout { display: grid; grid-template-columns: minmax(320px, 440px) 1fr; gap: 20px; align-items: start; }
      cphone-player { width: 100%; height: calc(100vh - 190px); min-height: 420px; background: #000; border-radius: 12px; overflow: hidden; }
      .stopped { height: 300px; display: flex; align-items: center; justify-content: center; text-align: center; background: #101828; color: #d0d5dd; border-radius: 12px; padding: 20px; }
      .drop { border: 2px dashed #98a2b3; border-radius: 10px; padding: 16px; text-align: center; }
      .drop.over { border-color: #2563eb; background: #eff4ff; }
      progress { width: 100%; }
      pre.logcat { height: 260px; overflow: auto; background: #0c111d; color: #d0d5dd; padding: 8px; border-radius: 8px; margin: 0; white-space: pre-wrap; }
      ol.events { list-style: none; padding: 0; margin: 0; max-height: 220px; overflow: auto; }
      ol.events li { padding: 4px 0; border-bottom: 1px solid #eef0f4; }
      section { margin-bottom: 16px; }
      a { color: #1d4ed8; }
    `,
  ];

  constructor() {
    super();
    this.deviceId = '';
    this.device = undefined;
    this.events = [];
    this.problem = undefined;
    this.notice = '';
    this.progress = undefined;
    this.logcat = [];
    this.follow = false;
    this.filter = '';
    this.dragging = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
    this.timers.push(setInterval(() => void this.load(), STATE_POLL_MS));
    this.timers.push(
      setInterval(() => {
        if (this.follow) void this.loadLogcat();
      }, LOGCAT_FOLLOW_MS),
    );
  }

  override disconnectedCallback(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    super.disconnectedCallback();
  }

  private async load(): Promise<void> {
    try {
      const { device } = await api.devices.getDevice({ deviceId: this.deviceId });
      // Events are read again only when the device row changed: an event is written with the
      // change it records.
      const [now, before] = [device?.updateTime, this.device?.updateTime];
      if (!this.device || now?.seconds !== before?.seconds || now?.nanos !== before?.nanos) {
        this.events = (
          await api.devices.listDeviceEvents({ deviceId: this.deviceId, pageSize: 50 })
        ).deviceEvents;
      }
      this.device = device;
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async act(action: 'start' | 'stop' | 'reboot'): Promise<void> {
    const deviceId = this.deviceId;
    try {
      if (action === 'start') await api.devices.startDevice({ deviceId });
      else if (action === 'stop') await api.devices.stopDevice({ deviceId });
      else await api.devices.rebootDevice({ deviceId });
      await this.load();
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  private async screenshot(): Promise<void> {
    try {
      const shot = await api.devices.takeScreenshot({ deviceId: this.deviceId });
      const png = new Blob([shot.png as Uint8Array<ArrayBuffer>], { type: 'image/png' });
      saveBlob(png, `${this.device?.displayName || this.deviceId}-${Date.now()}.png`);
    } catch (error) {
      this.problem = problemOf(error);
    }
  }

  /**
   * Uploads `file` as an artifact with its progress shown, then runs `use` on it; the outcome
   * becomes the notice, a failure the problem banner.
   */
  private async withUpload(
    file: File,
    kind: ArtifactKind,
    use: (artifact: Artifact) => Promise<string>,
  ): Promise<void> {
    this.problem = undefined;
    this.notice = '';
    try {
      const artifact = await uploadArtifact(file, kind, (fraction) => {
        this.progress = {
          text: t('phone.installUploading', { file: file.name, percent: Math.floor(fraction * 100) }),
          fraction,
        };
      });
      this.notice = await use(artifact);
    } catch (error) {
      this.problem = problemOf(error);
    } finally {
      this.progress = undefined;
    }
  }

  install(file: File): Promise<void> {
    return this.withUpload(file, ArtifactKind.APK, async (artifact) => {
      this.progress = { text: t('phone.installInstalling', { file: file.name }), fraction: undefined };
      const done = await api.devices.installApp({ deviceId: this.deviceId, artifactSha256: artifact.sha256 });
      return t('phone.installDone', { package: done.packageName, version: done.versionName });
    });
  }

  push(file: File, remotePath: string): Promise<void> {
    return this.withUpload(file, ArtifactKind.FILE, async (artifact) => {
      await api.devices.pushFile({ deviceId: this.deviceId, artifactSha256: artifact.sha256, remotePath });
      return t('phone.pushDone', { file: file.name, path: remotePath });
    });
  }

  async pull(remotePath: string): Promise<void> {
    this.problem = undefined;
    const file = remotePath.split('/').pop() || 'file';
    try {
      const pulled = await api.devices.pullFile({ deviceId: this.deviceId, remotePath });
      const blob = await downloadArtifact(pulled.artifact?.sha256 ?? '', (bytes) => {
        this.progress = {
          text: t('phone.pullProgress', { file, size: `${Math.ceil(bytes / 1024)} KiB` }),
          fraction: undefined,
        };
      });
      saveBlob(blob, file);
    } catch (error) {
      this.problem = problemOf(error);
    } finally {
      this.progress = undefined;
    }
  }

  private async loadLogcat(): Promise<void> {
    try {
      const dump = await api.devices.dumpLogcat({ deviceId: this.deviceId, maxLines: LOGCAT_LINES });
      this.logcat = new TextDecoder().decode(dump.text).split('\n').filter(Boolean);
      const pre = this.renderRoot.querySelector('pre.logcat');
      if (pre && this.follow) requestAnimationFrame(() => pre.scrollTo({ top: pre.scrollHeight }));
    } catch (error) {
      this.follow = false;
      this.problem = problemOf(error);
    }
  }

  private onDrop(event: DragEvent): void {
    event.preventDefault();
    this.dragging = false;
    const file = event.dataTransfer?.files[0];
    if (file) void this.install(file);
  }

  private player() {
    const d = this.device;
    if (!d) return html`<div class="stopped">${t('app.loading')}</div>`;
    if (d.state !== DeviceState.RUNNING) return html`<div class="stopped">${t('phone.notRunning')}</div>`;
    return html`<cphone-player
      lang=${document.documentElement.lang}
      .tokenProvider=${sessionProvider(this.deviceId)}
    ></cphone-player>`;
  }

  override render() {
    const d = this.device;
    const name = d?.displayName || this.deviceId;
    const lines = this.filter
      ? this.logcat.filter((l) => l.toLowerCase().includes(this.filter.toLowerCase()))
      : this.logcat;
    return html`<p><a href="#/phones">← ${t('phone.back')}</a></p>
      <h1>${name} ${d ? stateBadge(DeviceState[d.state]) : nothing}</h1>
      ${problemBanner(this.problem, () => {
        this.problem = undefined;
      })}
      ${this.notice ? html`<div class="notice" role="status">${this.notice}</div>` : nothing}
      <div class="layout">
        <div>${this.player()}</div>
        <div>
          <section class="card" aria-label=${t('phone.actions')}>
            <div class="row">
              <button @click=${() => this.act('start')}>${t('phones.start')}</button>
              <button @click=${() => this.act('stop')}>${t('phones.stop')}</button>
              <button @click=${() => this.act('reboot')}>${t('phones.reboot')}</button>
              <button @click=${this.screenshot}>${t('phone.screenshot')}</button>
            </div>
            ${
              d
                ? html`<p class="muted">
                  ${t('phone.id')}: <code>${d.deviceId}</code> · ${t('phone.screen')}:
                  ${d.spec?.screen ? `${d.spec.screen.widthPx}×${d.spec.screen.heightPx}` : ''}
                  ${Object.entries(d.labels).map(([k, v]) => html` <span class="badge">${k}=${v}</span>`)}
                </p>`
                : nothing
            }
          </section>
          <section class="card">
            <h2>${t('phone.install')}</h2>
            <div
              class="drop ${this.dragging ? 'over' : ''}"
              data-testid="apk-drop"
              @dragover=${(e: DragEvent) => {
                e.preventDefault();
                this.dragging = true;
              }}
              @dragleave=${() => {
                this.dragging = false;
              }}
              @drop=${this.onDrop}
            >
              <p>${t('phone.installDrop')}</p>
              <label
                >${t('phone.installChoose')}
                <input
                  type="file"
                  accept=".apk,application/vnd.android.package-archive"
                  data-testid="apk-input"
                  @change=${(e: Event) => {
                    const file = (e.target as HTMLInputElement).files?.[0];
                    if (file) void this.install(file);
                  }}
              /></label>
            </div>
            ${
              this.progress
                ? html`<p role="status">${this.progress.text}</p>
                  <progress
                    aria-label=${this.progress.text}
                    max="1"
                    .value=${this.progress.fraction ?? 0}
                    ?indeterminate=${this.progress.fraction === undefined}
                  ></progress>`
                : nothing
            }
            <h2>${t('phone.push')}</h2>
            <form
              class="row"
              @submit=${(e: SubmitEvent) => {
                e.preventDefault();
                const form = e.target as HTMLFormElement;
                const file = (form.elements.namedItem('file') as HTMLInputElement).files?.[0];
                const path = (form.elements.namedItem('path') as HTMLInputElement).value;
                if (file) void this.push(file, path);
              }}
            >
              <input name="file" type="file" aria-label=${t('phone.pushChoose')} required />
              <input name="path" aria-label=${t('phone.pushPath')} value="/sdcard/Download/" required />
              <button>${t('phone.push')}</button>
            </form>
            <h2>${t('phone.pull')}</h2>
            <form
              class="row"
              @submit=${(e: SubmitEvent) => {
                e.preventDefault();
                const path = ((e.target as HTMLFormElement).elements.namedItem('path') as HTMLInputElement)
                  .value;
                void this.pull(path);
              }}
            >
              <input name="path" aria-label=${t('phone.pullPath')} placeholder=${t('phone.pullPathExample')} required />
              <button>${t('phone.pull')}</button>
            </form>
          </section>
          <section class="card">
            <div class="row">
              <h2>${t('phone.logcat')}</h2>
              <label
                ><input
                  type="checkbox"
                  .checked=${this.follow}
                  @change=${(e: Event) => {
                    this.follow = (e.target as HTMLInputElement).checked;
                    if (this.follow) void this.loadLogcat();
                  }}
                />
                ${t('phone.logcatFollow')}</label
              >
              <input
                type="search"
                aria-label=${t('phone.logcatFilter')}
                placeholder=${t('phone.logcatFilter')}
                @input=${(e: Event) => {
                  this.filter = (e.target as HTMLInputElement).value;
                }}
              />
            </div>
            <pre class="logcat" aria-live="off" tabindex="0">${lines.length ? lines.join('\n') : t('phone.logcatEmpty')}</pre>
          </section>
          <section class="card">
            <h2>${t('phone.events')}</h2>
            <ol class="events">
              ${
                this.events.length
                  ? this.events.map(
                      (e) => html`<li>
                      <span class="muted">${formatTime(e.createTime)}</span>
                      ${t('phone.eventLine', {
                        from: t(`state.${DeviceState[e.fromState]}` as MessageKey),
                        to: t(`state.${DeviceState[e.toState]}` as MessageKey),
                      })}
                      <span class="muted">${e.reason} ${e.message}</span>
                    </li>`,
                    )
                  : html`<li class="muted">${t('phone.eventsEmpty')}</li>`
              }
            </ol>
          </section>
        </div>
      </div>`;
  }
}

customElements.define('cp-phone', CpPhone);
