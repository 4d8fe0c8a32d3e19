import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import { DeviceService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { createDecodeGuard } from '../api/decode-guard.js';
import { listenHttp } from './listen.js';
import { createRpcListener } from './rpc.js';

/** A listener whose GetDevice answers at once, or for device "hold" waits until its call is aborted. */
async function serve() {
  const signals: AbortSignal[] = [];
  const closed: string[] = [];
  const guard = createDecodeGuard({ interceptors: [], readMaxBytes: 1 << 20 });
  const { listener } = createRpcListener({
    routes: (router: ConnectRouter) => {
      router.service(DeviceService, {
        async getDevice(req, context) {
          signals.push(context.signal);
          if (req.deviceId !== 'hold') return { device: { deviceId: req.deviceId } };
          await new Promise((_, reject) =>
            context.signal.addEventListener('abort', () => reject(context.signal.reason)),
          );
          throw new ConnectError('unreachable', Code.Internal);
        },
      });
      guard.cover(router);
    },
    guard,
    fallback: (_req, res) => res.writeHead(404).end(),
    logger: pino({ level: 'silent' }),
  });
  const server = await listenHttp({
    port: 0,
    hostname: '127.0.0.1',
    listener: (req, res) => {
      res.once('close', () => closed.push(req.url ?? ''));
      listener(req, res);
    },
  });
  return { server, signals, closed, url: `http://127.0.0.1:${server.address().port}` };
}

function call(url: string, deviceId: string) {
  const body = JSON.stringify({ deviceId });
  return request(`${url}/cphone.api.v1.DeviceService/GetDevice`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  }).end(body);
}

test('a call answered in full is not told its client went away; a client that goes away aborts it as CANCELED', async () => {
  const { server, signals, closed, url } = await serve();
  try {
    const answered = await new Promise<string>((resolve, reject) => {
      call(url, 'dev_1')
        .on('response', (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    assert.equal(JSON.parse(answered).device.deviceId, 'dev_1');
    await waitFor(
      'the response closed',
      () => closed.length,
      (n) => n === 1,
    );
    // Connect aborts a call's own signal once the handler is done (with no reason); the transport
    // adds nothing for a client that got its whole answer.
    assert.equal(
      signals[0]?.reason instanceof ConnectError,
      false,
      'no client-went-away after a finished answer',
    );

    const held = call(url, 'hold');
    held.on('error', () => {});
    await waitFor(
      'the held call arrived',
      () => signals.length,
      (n) => n === 2,
    );
    held.destroy();
    await waitFor('the held call aborted', () => signals[1]?.aborted, Boolean);
    assert.equal(ConnectError.from(signals[1]?.reason).code, Code.Canceled);
  } finally {
    await server.close();
  }
});
