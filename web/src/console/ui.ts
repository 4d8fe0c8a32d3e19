// Shared look and small building blocks of the console: the style sheet every page adopts, the
// problem banner (an API error in words, with its request id), and state badges.
import { css, html, LitElement, nothing, type TemplateResult } from 'lit';
import type { Problem } from './api.js';
import { localeEvents, t } from './i18n.js';
import type { MessageKey } from './messages.js';

export const shared = css`
  :host {
    display: block;
    color: #1d2433;
    font: 14px/1.45 system-ui, 'PingFang SC', 'Microsoft YaHei', sans-serif;
  }
  h1 { font-size: 20px; margin: 0 0 12px; }
  h2 { font-size: 16px; margin: 16px 0 8px; }
  button, select, input, textarea {
    font: inherit;
    border: 1px solid #c5cbd6;
    border-radius: 6px;
    padding: 6px 10px;
    background: #fff;
    color: inherit;
  }
  button { cursor: pointer; background: #f3f5f9; }
  button.primary { background: #2563eb; border-color: #2563eb; color: #fff; }
  button.danger { color: #b42318; }
  button:disabled { opacity: 0.55; cursor: default; }
  :focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e4e7ee; vertical-align: middle; }
  .row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
  .muted { color: #667085; }
  .card { background: #fff; border: 1px solid #e4e7ee; border-radius: 10px; padding: 12px; }
  .problem { background: #fef3f2; border: 1px solid #fecdca; color: #912018; border-radius: 8px; padding: 8px 12px; margin: 8px 0; }
  .problem small { display: block; color: #b42318; opacity: 0.8; }
  .notice { background: #ecfdf3; border: 1px solid #abefc6; color: #05603a; border-radius: 8px; padding: 8px 12px; margin: 8px 0; }
  .badge { display: inline-block; border-radius: 999px; padding: 1px 8px; font-size: 12px; background: #eef2f6; }
  .badge.RUNNING { background: #dcfae6; color: #067647; }
  .badge.ERROR, .badge.LOST { background: #fee4e2; color: #b42318; }
  .badge.STOPPED { background: #f2f4f7; color: #475467; }
  code, pre { font-family: ui-monospace, 'SFMono-Regular', Menlo, monospace; font-size: 12px; }
`;

/** A console element that renders again in the new language when the reader switches. */
export class LocalizedElement extends LitElement {
  private readonly relabel = () => this.requestUpdate();

  override connectedCallback(): void {
    super.connectedCallback();
    localeEvents.addEventListener('locale-changed', this.relabel);
  }

  override disconnectedCallback(): void {
    localeEvents.removeEventListener('locale-changed', this.relabel);
    super.disconnectedCallback();
  }
}

/** The problem as a banner: its words and the request id to quote. */
export function problemBanner(
  problem: Problem | undefined,
  onDismiss?: () => void,
): TemplateResult | typeof nothing {
  if (!problem) return nothing;
  return html`<div class="problem" role="alert">
    ${t(problem.key, problem.params)}
    ${problem.requestId ? html`<small>${t('error.requestId', { id: problem.requestId })}</small>` : nothing}
    ${onDismiss ? html`<button @click=${onDismiss}>${t('common.dismiss')}</button>` : nothing}
  </div>`;
}

/** A device state as a coloured badge in the reader's language. */
export function stateBadge(stateName: string): TemplateResult {
  return html`<span class="badge ${stateName}">${t(`state.${stateName}` as MessageKey)}</span>`;
}
