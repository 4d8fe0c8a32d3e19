// The web console's static build, served at / (the embedded default; in production any web server
// can serve the same folder), and the embeddable player script at /cphone-player.js. index.html is never cached, so a new build is picked up at once; the
// hashed assets are cached for a year. Every answer carries a content security policy that allows
// only this origin's scripts, and the stream endpoints' WebSockets (on the hosts' own origins).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Lit adopts constructed style sheets; a few attributes style elements inline.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  // The API on this origin; signaling on each host's stream endpoint.
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export function mountConsole(app: Hono, dir: string): void {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new Error(
      `CPHONE_CONSOLE_DIR ${dir} holds no index.html: build it with npm run build -w @cphone/web`,
    );
  }
  const headers = (immutable: boolean) => ({
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  app.get('/assets/*', async (c, next) => {
    await next();
    if (c.res.ok) for (const [k, v] of Object.entries(headers(true))) c.res.headers.set(k, v);
  });
  app.get('/assets/*', serveStatic({ root: dir }));
  // The embeddable player: any site may include it with <script src>, so it is not bound to this
  // origin's policy; it changes with each build, so it is checked on every load.
  app.get('/cphone-player.js', async (c, next) => {
    await next();
    if (c.res.ok) {
      c.res.headers.set('cache-control', 'no-cache');
      c.res.headers.set('x-content-type-options', 'nosniff');
      c.res.headers.set('cross-origin-resource-policy', 'cross-origin');
    }
  });
  app.get('/cphone-player.js', serveStatic({ root: dir, path: 'cphone-player.js' }));
  app.get('/', async (c, next) => {
    await next();
    if (c.res.ok) for (const [k, v] of Object.entries(headers(false))) c.res.headers.set(k, v);
  });
  app.get('/', serveStatic({ root: dir, path: 'index.html' }));
}
