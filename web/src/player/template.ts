// The element's shadow DOM: the screen (video fitted to the box, a hidden text field that holds
// keyboard focus and takes input methods), the status line, the stats overlay and the toolbar.
// Labels are filled in from the message table (messages.ts); nothing here is shown as is.

export const NAV_BUTTONS = ['back', 'home', 'app-switch', 'volume-down', 'volume-up', 'power'] as const;
export type NavButton = (typeof NAV_BUTTONS)[number];
export const QUALITIES = ['auto', '1080p', '720p', '480p'] as const;

const SPEAKER = '<path fill="currentColor" d="M3 8h3l4-3.5v11L6 12H3z"/>';
const svg = (body: string) =>
  `<svg viewBox="0 0 20 20" width="18" height="18" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;

/** Inline SVG icons: they draw the same everywhere, with no font to depend on. */
export const ICONS: Record<NavButton | 'rotate' | 'fullscreen' | 'muted' | 'sound' | 'stats', string> = {
  back: svg('<path fill="currentColor" d="M14 4 6 10l8 6z"/>'),
  home: svg('<circle cx="10" cy="10" r="6"/>'),
  'app-switch': svg('<rect x="4" y="4" width="12" height="12" rx="1.5"/>'),
  'volume-down': svg(`${SPEAKER}<path d="M13 8a3 3 0 0 1 0 4"/>`),
  'volume-up': svg(`${SPEAKER}<path d="M13 8a3 3 0 0 1 0 4M15.5 5.5a6.5 6.5 0 0 1 0 9"/>`),
  power: svg('<path d="M10 3v7M6.2 5.8a6 6 0 1 0 7.6 0"/>'),
  rotate: svg('<path d="M15.5 11A5.5 5.5 0 1 1 13.7 5.7"/><path d="M14.5 2.5v3.8h-3.8"/>'),
  fullscreen: svg('<path d="M3 8V3h5M12 3h5v5M17 12v5h-5M8 17H3v-5"/>'),
  muted: svg(`${SPEAKER}<path d="M13 8l4 4M17 8l-4 4"/>`),
  sound: svg(`${SPEAKER}<path d="M13 8a3 3 0 0 1 0 4M15.5 5.5a6.5 6.5 0 0 1 0 9"/>`),
  stats: svg('<path d="M4 16v-5M10 16V4M16 16V8"/>'),
};

const CSS = `
:host { display: block; position: relative; background: #000; color: #eee; width: 360px; height: 720px;
  font: 13px system-ui, sans-serif; contain: content; }
:host([hidden]) { display: none; }
.wrap { position: absolute; inset: 0; display: flex; flex-direction: column; }
.screen { position: relative; flex: 1; min-height: 0; touch-action: none; user-select: none; outline: none; }
.screen:focus-within { box-shadow: inset 0 0 0 2px #4c9ffe; }
video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; background: #000; }
textarea { position: absolute; left: 0; top: 0; width: 1px; height: 1px; opacity: 0; border: 0; padding: 0;
  resize: none; overflow: hidden; caret-color: transparent; }
.status { position: absolute; left: 8px; right: 8px; top: 8px; padding: 4px 8px; border-radius: 4px;
  background: rgba(0,0,0,.65); pointer-events: none; text-align: center; }
.status[data-state="connected"] { display: none; }
.stats { position: absolute; left: 8px; bottom: 8px; padding: 4px 8px; border-radius: 4px; white-space: pre;
  background: rgba(0,0,0,.65); font: 11px ui-monospace, monospace; pointer-events: none; display: none; }
:host([stats]) .stats { display: block; }
.unmute { position: absolute; right: 8px; bottom: 8px; }
.toolbar { display: flex; flex-wrap: wrap; gap: 3px; padding: 4px 2px; background: #1b1b1b; align-items: center;
  justify-content: center; }
button, select { background: #2c2c2c; color: #eee; border: 1px solid #444; border-radius: 4px; min-width: 30px; padding: 0 5px;
  height: 30px; font: inherit; cursor: pointer; display: inline-flex; align-items: center; justify-content: center; }
button:hover, select:hover { background: #3a3a3a; }
button:focus-visible, select:focus-visible { outline: 2px solid #4c9ffe; outline-offset: 1px; }
button[aria-pressed="true"] { background: #2d4f7c; }
:host([view-only]) .control { display: none; }
.badge { padding: 0 6px; color: #fbd46d; display: none; }
:host([view-only]) .badge { display: inline; }
`;

export function template(): string {
  const nav = NAV_BUTTONS.map(
    (b) => `<button type="button" class="control" data-nav="${b}">${ICONS[b]}</button>`,
  ).join('');
  const qualities = QUALITIES.map((q) => `<option value="${q}">${q}</option>`).join('');
  return `<style>${CSS}</style>
<div class="wrap" part="wrap">
  <div class="screen" part="screen">
    <video part="video" playsinline autoplay muted></video>
    <textarea class="keys" autocomplete="off" autocapitalize="off" spellcheck="false"></textarea>
    <div class="status" role="status" aria-live="polite" part="status"></div>
    <div class="stats" part="stats" aria-hidden="true"></div>
    <button type="button" class="unmute" data-action="sound">${ICONS.muted}</button>
  </div>
  <div class="toolbar" role="toolbar" part="toolbar">
    ${nav}
    <button type="button" class="control" data-action="rotate">${ICONS.rotate}</button>
    <select data-action="quality">${qualities}</select>
    <button type="button" data-action="stats" aria-pressed="false">${ICONS.stats}</button>
    <button type="button" data-action="fullscreen">${ICONS.fullscreen}</button>
    <span class="badge"></span>
  </div>
</div>`;
}
