/// <reference lib="dom" />
// <cphone-player>: a phone's screen, live, in any page. It joins a stream session on the host's sfu
// (stream.ts), shows the video fitted to its box, sends touches, scrolls, keys, text (input
// methods included) and the clipboard over the input channel, reconnects by itself after closes
// that are not final (with a new token from `tokenProvider` when the old one expired), and reports
// its time to first frame and glass-to-glass figures with the session's telemetry.

import { fitRect, toFrame } from './geometry.js';
import { ANDROID_KEYCODES, isTyping, metaState } from './keymap.js';
import { closeText, type Messages, messagesFor } from './messages.js';
import type { Json } from './signal.js';
import { StreamConnection, type StreamSession } from './stream.js';
import { ICONS, NAV_BUTTONS, type NavButton, QUALITIES, template } from './template.js';

export type { StreamSession };
export type PlayerState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';
export type Quality = (typeof QUALITIES)[number];

/** Closes after which the player joins again by itself (the host restarting, a lost link, a media restart). */
const RETRYABLE_CLOSES = new Set([1001, 1006, 4503]);
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 8000;
/** Pointer id of the mirrored second finger of the Ctrl+drag pinch (real ids stay below it). */
const MIRROR_POINTER_OFFSET = 1 << 30;
/** The sfu's limit on one `text` message, in UTF-8 bytes. */
const MAX_TEXT_BYTES = 4096;

/** The `exp` claim (s) of a stream token (a JWT), if it can be read. */
function tokenExpiry(token: string): number | undefined {
  try {
    const body = token.split('.')[1] ?? '';
    const json = atob(body.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

const expired = (token: string) => {
  const exp = tokenExpiry(token);
  return exp !== undefined && exp * 1000 <= Date.now();
};

/** Text cut into pieces of at most MAX_TEXT_BYTES UTF-8 bytes, never inside a code point. */
function textPieces(text: string): string[] {
  const pieces: string[] = [];
  let piece = '';
  let bytes = 0;
  for (const ch of text) {
    const n = new TextEncoder().encode(ch).length;
    if (bytes + n > MAX_TEXT_BYTES) {
      pieces.push(piece);
      piece = '';
      bytes = 0;
    }
    piece += ch;
    bytes += n;
  }
  if (piece) pieces.push(piece);
  return pieces;
}

export class CphonePlayer extends HTMLElement {
  static readonly observedAttributes = ['token', 'sfu-url', 'view-only', 'quality', 'muted', 'stats', 'lang'];

  #tokenProvider: (() => Promise<StreamSession>) | undefined;
  #session: StreamSession | undefined;
  #conn: StreamConnection | undefined;
  #state: PlayerState = 'idle';
  #stopped = true;
  #attempt = 0;
  #renew = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  #connectStartedAt = 0;
  #firstFrameMs: number | undefined;
  #frames = 0;
  #size = { width: 0, height: 0 };
  #pointers = new Map<number, { mirror: boolean }>();
  #m: Messages = messagesFor(undefined);
  #statusText = '';
  readonly #root: ShadowRoot;
  readonly #video: HTMLVideoElement;
  readonly #keys: HTMLTextAreaElement;
  readonly #screen: HTMLElement;
  readonly #status: HTMLElement;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    this.#root.innerHTML = template();
    const q = <T extends Element>(selector: string) => this.#root.querySelector(selector) as T;
    this.#video = q('video');
    this.#keys = q('textarea');
    this.#screen = q('.screen');
    this.#status = q('.status');
    this.#wireScreen();
    this.#wireKeyboard();
    this.#wireToolbar();
    this.#video.requestVideoFrameCallback?.(this.#onFrame);
    this.#video.addEventListener('resize', () =>
      this.#sized(this.#video.videoWidth, this.#video.videoHeight),
    );
  }

  // --- the API ---

  /** The stream session to play ({ sfuUrl, token, iceServers?, sessionId? }, a StreamSession in JSON). */
  get session(): StreamSession | undefined {
    return this.#session ?? this.#attributeSession();
  }

  set session(session: StreamSession | undefined) {
    this.#session = session;
    if (session && this.isConnected && this.#state === 'idle') void this.connect();
  }

  /** Called for the first connect when no session is set, and again when the token has expired. */
  get tokenProvider(): (() => Promise<StreamSession>) | undefined {
    return this.#tokenProvider;
  }

  set tokenProvider(provider: (() => Promise<StreamSession>) | undefined) {
    this.#tokenProvider = provider;
    if (provider && this.isConnected && this.#state === 'idle') void this.connect();
  }

  get state(): PlayerState {
    return this.#state;
  }

  /** The state line as shown (a close's reason in words). */
  get statusText(): string {
    return this.#statusText;
  }

  get viewOnly(): boolean {
    return this.hasAttribute('view-only');
  }

  get quality(): Quality {
    const q = this.getAttribute('quality') as Quality | null;
    return q && (QUALITIES as readonly string[]).includes(q) ? q : 'auto';
  }

  set quality(q: Quality) {
    this.setAttribute('quality', q);
  }

  /** The time from connect() to the first decoded frame, ms, once there was one. */
  get firstFrameMs(): number | undefined {
    return this.#firstFrameMs;
  }

  /** Video frames presented since the element was made. */
  get framesPresented(): number {
    return this.#frames;
  }

  /** The phone's video size as decoded (0 before the first frame). */
  get videoSize(): { width: number; height: number } {
    return { ...this.#size };
  }

  /** The figures of the stats overlay. */
  get figures() {
    return { ...(this.#conn?.figures ?? {}), firstFrameMs: this.#firstFrameMs };
  }

  /** Whether input can be sent now (a CONTROL session, not view-only, its input channel open). */
  get inputOpen(): boolean {
    return !this.viewOnly && (this.#conn?.inputOpen ?? false);
  }

  /** Joins (again, from scratch): the time to first frame is measured from here. */
  async connect(): Promise<void> {
    this.#teardown();
    this.#stopped = false;
    this.#attempt = 0;
    this.#connectStartedAt = performance.now();
    this.#firstFrameMs = undefined;
    this.#setState('connecting');
    await this.#open();
  }

  /** Leaves the session. */
  disconnect(): void {
    this.#stopped = true;
    const conn = this.#conn;
    this.#conn = undefined;
    // A leave, not a bare close: the session ends now instead of holding its seat for the resume window.
    conn?.leave();
    this.#teardown();
    this.#setState('closed', 1000, '');
  }

  /** Bytes of input queued and not yet sent to the phone: a console mirroring input skips a player far behind. */
  get inputBacklog(): number {
    return this.#conn?.inputBacklog ?? 0;
  }

  /** Sends one input-channel message (sfu/README.md, "Input and output channels"); false when it cannot. */
  sendInput(message: Json): boolean {
    if (this.viewOnly || !this.#conn?.send(message)) return false;
    this.#emit('cphone-input', message);
    return true;
  }

  nav(button: NavButton): boolean {
    return this.sendInput({ type: 'nav', button });
  }

  rotate(): boolean {
    return this.sendInput({ type: 'rotate' });
  }

  /** Types text on the phone (pieces of at most 4096 bytes). */
  type(text: string): boolean {
    return textPieces(text).every((piece) => this.sendInput({ type: 'text', text: piece }));
  }

  /** Puts text on the phone's clipboard and pastes it; without text, the browser's clipboard (needs a user gesture). */
  async paste(text?: string): Promise<boolean> {
    const value = text ?? (await navigator.clipboard.readText());
    return this.sendInput({ type: 'clipboard', text: value, paste: true });
  }

  /** Full screen on, or off when it is on. */
  async toggleFullscreen(): Promise<void> {
    if (document.fullscreenElement === this) await document.exitFullscreen();
    else await this.requestFullscreen();
  }

  /** The current video frame as a PNG. */
  screenshot(): Promise<Blob> {
    const { videoWidth: w, videoHeight: h } = this.#video;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    canvas.getContext('2d')?.drawImage(this.#video, 0, 0, w, h);
    return new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('no video frame to capture'))), 'image/png'),
    );
  }

  // --- lifecycle ---

  connectedCallback(): void {
    this.#applyLang();
    this.#applyMuted();
    if (this.#stopped && this.#state === 'idle' && (this.session || this.tokenProvider)) void this.connect();
  }

  disconnectedCallback(): void {
    if (!this.#stopped) this.disconnect();
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value) return;
    if (name === 'lang') this.#applyLang();
    else if (name === 'muted') this.#applyMuted();
    else if (name === 'stats') this.#applyStats();
    else if (name === 'quality') {
      (this.#root.querySelector('select') as HTMLSelectElement).value = this.quality;
      if (this.#state === 'connected') this.#conn?.setQuality(this.quality).catch(() => undefined);
    } else if ((name === 'token' || name === 'sfu-url') && this.isConnected && this.#state === 'idle') {
      if (this.session) void this.connect();
    }
  }

  // --- connecting ---

  #attributeSession(): StreamSession | undefined {
    const token = this.getAttribute('token');
    const sfuUrl = this.getAttribute('sfu-url');
    return token && sfuUrl ? { token, sfuUrl } : undefined;
  }

  async #open(): Promise<void> {
    let session = this.session;
    if (this.tokenProvider && (!session || this.#renew || expired(session.token))) {
      try {
        session = await this.tokenProvider();
        this.#session = session;
        this.#renew = false;
      } catch (error) {
        this.#emit('cphone-error', { message: String(error) });
        this.#scheduleRetry(this.#m.reconnecting);
        return;
      }
    }
    if (this.#stopped) return;
    if (!session) {
      this.#emit('cphone-error', { message: this.#m.noSession });
      this.#setState('closed', 0, '', this.#m.noSession);
      return;
    }
    const conn = new StreamConnection(session, {
      onVideoSize: (width, height) => this.#sized(width, height),
      onOutput: (m) => this.#output(m),
      onClose: (code, reason) => this.#closed(conn, code, reason),
    });
    this.#conn = conn;
    conn.firstFrameMs = this.#firstFrameMs;
    this.#video.srcObject = conn.stream;
    try {
      await conn.start({ quality: this.quality, input: !this.viewOnly });
      if (this.#conn !== conn) return;
      this.#attempt = 0;
      this.#setState('connected');
      this.#video.play().catch(() => undefined);
    } catch (error) {
      // A refused join closes the socket, which #closed handles; anything else is the player's own.
      if (!conn.signal.closed) {
        this.#emit('cphone-error', { message: String(error) });
        conn.close();
        conn.signal.close(4000);
      }
    }
  }

  #closed(conn: StreamConnection, code: number, reason: string): void {
    if (conn !== this.#conn || this.#stopped) return;
    conn.close();
    const tokenExpired = code === 4401 && (expired(conn.session.token) || /expired/i.test(reason));
    if (RETRYABLE_CLOSES.has(code) || (tokenExpired && this.tokenProvider)) {
      this.#renew = tokenExpired;
      this.#scheduleRetry(closeText(this.#m, code, reason, tokenExpired));
      return;
    }
    this.#stopped = true;
    this.#setState('closed', code, reason, closeText(this.#m, code, reason, tokenExpired));
  }

  /** Exponential backoff with full jitter over the upper half, so players of one host spread out. */
  #scheduleRetry(why: string): void {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.#attempt++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#setState('reconnecting', undefined, undefined, `${this.#m.reconnecting} ${why}`);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (!this.#stopped) void this.#open();
    }, delay);
  }

  #teardown(): void {
    clearTimeout(this.#retry);
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.close();
    if (conn && !conn.signal.closed) conn.signal.close(1000);
    this.#pointers.clear();
  }

  #setState(state: PlayerState, code?: number, reason?: string, text?: string): void {
    this.#state = state;
    const words: Record<PlayerState, string> = {
      idle: '',
      connecting: this.#m.connecting,
      connected: this.#m.connected,
      reconnecting: this.#m.reconnecting,
      closed: this.#m.closed,
    };
    this.#statusText = text ?? words[state];
    this.#status.textContent = this.#statusText;
    this.#status.dataset.state = state;
    this.#emit('cphone-state', {
      state,
      text: this.#statusText,
      ...(code !== undefined ? { code } : {}),
      ...(reason !== undefined ? { reason } : {}),
    });
  }

  #emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  // --- media ---

  readonly #onFrame = (now: number, meta: VideoFrameCallbackMetadata): void => {
    this.#video.requestVideoFrameCallback(this.#onFrame);
    const conn = this.#conn;
    if (!conn) return;
    this.#frames++;
    // When it is shown: expectedDisplayTime, except that a starved Chromium can date it from a
    // stale begin-frame, before its last packet arrived; no frame is shown before it is received.
    conn.presented(meta.rtpTimestamp, Math.max(meta.expectedDisplayTime, meta.receiveTime ?? 0));
    if (this.#firstFrameMs === undefined && this.#state !== 'idle') {
      const ms = Math.max(0, now - this.#connectStartedAt);
      this.#firstFrameMs = ms;
      conn.firstFrameMs = ms;
      this.#emit('cphone-first-frame', { ms, width: meta.width, height: meta.height });
    }
    if (meta.width !== this.#size.width || meta.height !== this.#size.height)
      this.#sized(meta.width, meta.height);
  };

  #sized(width: number, height: number): void {
    if (!width || !height || (width === this.#size.width && height === this.#size.height)) return;
    this.#size = { width, height };
    this.#emit('cphone-video-size', { width, height });
  }

  #output(m: Json): void {
    if (m.type !== 'clipboard' || typeof m.text !== 'string') return;
    const text = m.text;
    this.#emit('cphone-clipboard', { text });
    // Allowed when the page has focus and the clipboard-write permission (granted to focused pages in Chromium).
    navigator.clipboard?.writeText(text).catch(() => undefined);
  }

  #applyMuted(): void {
    if (this.hasAttribute('muted')) this.#video.muted = true;
    this.#labelSound();
  }

  #labelSound(): void {
    const button = this.#root.querySelector('[data-action="sound"]') as HTMLButtonElement;
    const label = this.#video.muted ? this.#m.unmute : this.#m.mute;
    button.setAttribute('aria-label', label);
    button.title = label;
    button.innerHTML = this.#video.muted ? ICONS.muted : ICONS.sound;
  }

  #unmuteOnGesture(): void {
    if (!this.hasAttribute('muted') && this.#video.muted) {
      this.#video.muted = false;
      this.#labelSound();
    }
  }

  #applyStats(): void {
    clearInterval(this.#statsTimer);
    const stats = this.#root.querySelector('.stats') as HTMLElement;
    const pressed = this.#root.querySelector('[data-action="stats"]') as HTMLElement;
    pressed.setAttribute('aria-pressed', String(this.hasAttribute('stats')));
    if (!this.hasAttribute('stats')) return;
    const draw = () => {
      const f = this.#conn?.figures;
      const m = this.#m;
      const ms = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(0)} ms`);
      stats.textContent = [
        `${m.fps} ${(f?.fps ?? 0).toFixed(0)}`,
        `${m.bitrate} ${((f?.bitrateBps ?? 0) / 1000).toFixed(0)} kbit/s`,
        `${m.rtt} ${ms(f?.rttMs)}`,
        `${m.loss} ${((f?.loss ?? 0) * 100).toFixed(1)} %`,
        `${m.glassToGlass} ${ms(f?.glassToGlassMs)}`,
        `${m.firstFrame} ${ms(this.#firstFrameMs)}`,
      ].join('\n');
    };
    draw();
    this.#statsTimer = setInterval(draw, 1000);
  }

  #applyLang(): void {
    this.#m = messagesFor(this.getAttribute('lang') ?? document.documentElement.lang);
    const m = this.#m;
    const label = (selector: string, text: string) => {
      const el = this.#root.querySelector(selector);
      el?.setAttribute('aria-label', text);
      el?.setAttribute('title', text);
    };
    const navLabels: Record<NavButton, string> = {
      back: m.back,
      home: m.home,
      'app-switch': m.appSwitch,
      'volume-down': m.volumeDown,
      'volume-up': m.volumeUp,
      power: m.power,
    };
    for (const b of NAV_BUTTONS) label(`[data-nav="${b}"]`, navLabels[b]);
    label('[data-action="rotate"]', m.rotate);
    label('[data-action="stats"]', m.stats);
    label('[data-action="fullscreen"]', m.fullscreen);
    label('select', m.quality);
    label('textarea', m.keyboard);
    (this.#root.querySelector('option[value="auto"]') as HTMLOptionElement).textContent = m.qualityAuto;
    this.#screen.setAttribute('aria-label', m.screen);
    this.#root.querySelector('.toolbar')?.setAttribute('aria-label', m.toolbar);
    (this.#root.querySelector('.badge') as HTMLElement).textContent = m.viewOnly;
    this.#labelSound();
    if (this.#state !== 'idle' && this.#state !== 'closed') this.#setState(this.#state);
  }

  // --- input ---

  /** Where the picture is on the page (object-fit: contain leaves bars beside or above it). */
  #shown() {
    const { width, height } = this.#frameSize();
    return fitRect(this.#video.getBoundingClientRect(), width, height);
  }

  #frameSize() {
    const { videoWidth, videoHeight } = this.#video;
    return videoWidth && videoHeight ? { width: videoWidth, height: videoHeight } : this.#size;
  }

  #touch(
    action: 'down' | 'move' | 'up' | 'cancel',
    pointerId: number,
    x: number,
    y: number,
    pressure: number,
  ) {
    const { width, height } = this.#frameSize();
    this.sendInput({
      type: 'touch',
      action,
      pointerId,
      x,
      y,
      pressure,
      frameWidth: width,
      frameHeight: height,
    });
  }

  #pointer(action: 'down' | 'move' | 'up' | 'cancel', e: PointerEvent): void {
    const state = this.#pointers.get(e.pointerId);
    if (!state) return;
    const { width, height } = this.#frameSize();
    const p = toFrame(this.#shown(), width, height, e.clientX, e.clientY, true);
    if (!p) return;
    const pressure =
      action === 'up' || action === 'cancel' ? 0 : e.pointerType === 'mouse' ? 1 : e.pressure || 1;
    const id = e.pointerId & (MIRROR_POINTER_OFFSET - 1);
    this.#touch(action, id, p.x, p.y, pressure);
    // Ctrl+drag: a second finger mirrored through the picture's centre, so a mouse can pinch.
    if (state.mirror) this.#touch(action, id + MIRROR_POINTER_OFFSET, width - p.x, height - p.y, pressure);
    if (action === 'up' || action === 'cancel') this.#pointers.delete(e.pointerId);
  }

  #wireScreen(): void {
    const screen = this.#screen;
    screen.addEventListener('pointerdown', (e) => {
      if ((e.target as Element).closest('button')) return; // the sound button
      this.#keys.focus({ preventScroll: true });
      this.#unmuteOnGesture();
      if (!this.inputOpen) return;
      const { width, height } = this.#frameSize();
      if (!toFrame(this.#shown(), width, height, e.clientX, e.clientY)) return; // on the letterbox
      e.preventDefault();
      screen.setPointerCapture(e.pointerId);
      this.#pointers.set(e.pointerId, { mirror: e.pointerType === 'mouse' && (e.ctrlKey || e.metaKey) });
      this.#pointer('down', e);
    });
    screen.addEventListener('pointermove', (e) => {
      for (const c of e.getCoalescedEvents?.() ?? [e]) this.#pointer('move', c);
    });
    screen.addEventListener('pointerup', (e) => this.#pointer('up', e));
    screen.addEventListener('pointercancel', (e) => this.#pointer('cancel', e));
    screen.addEventListener(
      'wheel',
      (e) => {
        if (!this.inputOpen) return;
        e.preventDefault();
        const { width, height } = this.#frameSize();
        const p = toFrame(this.#shown(), width, height, e.clientX, e.clientY, true);
        if (!p) return;
        const step = (d: number) =>
          Math.max(-16, Math.min(16, Math.sign(d) * Math.max(1, Math.round(Math.abs(d) / 100))));
        this.sendInput({
          type: 'scroll',
          ...p,
          frameWidth: width,
          frameHeight: height,
          dx: e.deltaX ? step(e.deltaX) : 0,
          dy: e.deltaY ? step(e.deltaY) : 0,
        });
      },
      { passive: false },
    );
    screen.addEventListener('contextmenu', (e) => e.preventDefault());
  }

  #key(action: 'down' | 'up', e: KeyboardEvent): void {
    if (e.isComposing || e.key === 'Process' || e.key === 'Dead' || e.code === 'Tab' || e.key === 'Tab')
      return;
    if (isTyping(e)) return; // comes as text (the `input` event)
    const keycode = ANDROID_KEYCODES[e.code];
    // Ctrl/Cmd+V pastes through the paste event (the browser's clipboard goes first).
    if (keycode === undefined || ((e.ctrlKey || e.metaKey) && e.code === 'KeyV')) return;
    e.preventDefault();
    this.sendInput({ type: 'key', action, keycode, metaState: metaState(e), repeat: e.repeat ? 1 : 0 });
  }

  #wireKeyboard(): void {
    const keys = this.#keys;
    keys.addEventListener('keydown', (e) => this.#key('down', e));
    keys.addEventListener('keyup', (e) => this.#key('up', e));
    // Text typed (a key, an on-screen keyboard, CDP's insertText) and committed compositions (IMEs).
    keys.addEventListener('input', (e) => {
      const ev = e as InputEvent;
      if (ev.isComposing || ev.inputType === 'insertCompositionText') return;
      if (ev.data) this.type(ev.data);
      keys.value = '';
    });
    keys.addEventListener('compositionend', (e) => {
      if (e.data) this.type(e.data);
      keys.value = '';
    });
    keys.addEventListener('paste', (e) => {
      e.preventDefault();
      const text = e.clipboardData?.getData('text/plain') ?? '';
      if (text) void this.paste(text);
    });
  }

  #wireToolbar(): void {
    this.#root.querySelector('.toolbar')?.addEventListener('click', (e) => {
      const button = (e.target as Element).closest('button');
      if (!button) return;
      this.#unmuteOnGesture();
      const nav = button.dataset.nav as NavButton | undefined;
      if (nav) this.nav(nav);
      switch (button.dataset.action) {
        case 'rotate':
          this.rotate();
          break;
        case 'stats':
          this.toggleAttribute('stats');
          break;
        case 'fullscreen':
          this.toggleFullscreen().catch((error: unknown) =>
            this.#emit('cphone-error', { message: String(error) }),
          );
          break;
      }
    });
    this.#root.querySelector('[data-action="sound"]')?.addEventListener('click', () => {
      this.#video.muted = !this.#video.muted;
      if (this.#video.muted) this.setAttribute('muted', '');
      else this.removeAttribute('muted');
      this.#labelSound();
    });
    this.#root.querySelector('select')?.addEventListener('change', (e) => {
      this.quality = (e.target as HTMLSelectElement).value as Quality;
    });
  }
}
