// The test player as a page a person opens: the bundled viewer (viewer-page/viewer.ts), a screen
// that takes mouse and touch as the phone's touches, a box that types text in any script, and the
// phone's buttons. The agent serves it at /view on its stream endpoint when asked to (the embedded
// default does), so the page and its signaling socket share one origin (and certificate, over TLS).
import { viewerBundle } from './chromium.js';

const PAGE_SCRIPT = `
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const status = document.getElementById('status');
const screen = document.getElementById('screen');
const show = (text) => { status.textContent = text; };
if (!token) show('No token: open the link npm start printed (it carries #token=...).');
else {
  cphoneViewer
    .start({ url: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/signal', token, reconnect: true, reportEveryMs: 1000 })
    .then((joined) => show('watching ' + joined.deviceId + (joined.rights === 'control' ? ' (control)' : ' (view only)')))
    .catch((e) => show('could not join: ' + e));
  setInterval(() => {
    const s = cphoneViewer.state;
    if (s.closed) show('closed ' + s.closed.code + ': ' + s.closed.reason);
  }, 1000);
}
const send = (m) => { try { cphoneViewer.sendInput(m); } catch (e) { show(String(e)); } };
const down = new Set();
function touch(action, e) {
  const video = screen.querySelector('video');
  if (!video) return;
  const box = video.getBoundingClientRect();
  send({
    type: 'touch', action, pointerId: e.pointerId,
    x: Math.min(Math.max(e.clientX - box.left, 0), box.width), y: Math.min(Math.max(e.clientY - box.top, 0), box.height),
    pressure: action === 'up' ? 0 : 1, frameWidth: Math.round(box.width), frameHeight: Math.round(box.height),
  });
}
screen.addEventListener('pointerdown', (e) => { down.add(e.pointerId); screen.setPointerCapture(e.pointerId); touch('down', e); });
screen.addEventListener('pointermove', (e) => { if (down.has(e.pointerId)) touch('move', e); });
screen.addEventListener('pointerup', (e) => { if (down.delete(e.pointerId)) touch('up', e); });
screen.addEventListener('pointercancel', (e) => { if (down.delete(e.pointerId)) touch('cancel', e); });
screen.addEventListener('wheel', (e) => {
  e.preventDefault();
  const box = screen.querySelector('video')?.getBoundingClientRect();
  if (!box) return;
  send({ type: 'scroll', x: e.clientX - box.left, y: e.clientY - box.top, frameWidth: Math.round(box.width),
    frameHeight: Math.round(box.height), dx: Math.sign(e.deltaX), dy: Math.sign(e.deltaY) });
}, { passive: false });
document.getElementById('type').addEventListener('submit', (e) => {
  e.preventDefault();
  const field = document.getElementById('text');
  if (field.value) send({ type: 'text', text: field.value });
  field.value = '';
});
for (const button of document.querySelectorAll('[data-nav]')) {
  button.addEventListener('click', () => send({ type: 'nav', button: button.dataset.nav }));
}
document.getElementById('rotate').addEventListener('click', () => send({ type: 'rotate' }));
`;

/** The page's HTML, the player bundled in (mediasoup-client included). */
export async function playerPageHtml(): Promise<string> {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cphone test player</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { margin: 0; font: 14px system-ui, sans-serif; background: #111; color: #ddd; display: flex;
    flex-direction: column; align-items: center; gap: 8px; padding: 8px; }
  #screen { touch-action: none; user-select: none; }
  #screen video { display: block; height: 80vh; width: auto; max-width: 95vw; background: #000; }
  form, nav { display: flex; gap: 6px; }
</style></head>
<body>
  <div id="status">connecting...</div>
  <div id="screen"></div>
  <nav><button data-nav="back">Back</button><button data-nav="home">Home</button>
    <button data-nav="app-switch">Apps</button><button id="rotate">Rotate</button></nav>
  <form id="type"><input id="text" placeholder="Type in any language" size="30"><button>Send</button></form>
  <script>${(await viewerBundle()).replaceAll('</script', '<\\/script')}</script>
  <script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
