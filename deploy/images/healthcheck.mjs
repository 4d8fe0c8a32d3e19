// The images' HEALTHCHECK: GET /healthz on the process's own HTTP port (CPHONE_HTTP_PORT, default
// 8080; HTTPS when CPHONE_HTTP_TLS_CERT is set, the certificate not checked: this is loopback).
// Exit 0 when it answers 200 within 3 s, else 1. Plain Node, no dependencies.
import { request as http } from 'node:http';
import { request as https } from 'node:https';

const port = Number(process.env.CPHONE_HTTP_PORT || 8080);
const tls = Boolean(process.env.CPHONE_HTTP_TLS_CERT);
const req = (tls ? https : http)(
  { host: '127.0.0.1', port, path: '/healthz', timeout: 3000, rejectUnauthorized: false },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exit(1);
});
req.end();
