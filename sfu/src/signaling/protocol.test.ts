import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode, closeFrameReason, SignalClose } from '../close-codes.js';
import { parseRequest } from './protocol.js';

const refused = (raw: string, message: RegExp) =>
  assert.throws(
    () => parseRequest(raw),
    (e: unknown) => e instanceof SignalClose && e.code === CloseCode.BAD_MESSAGE && message.test(e.message),
  );

test('requests parse to their typed form', () => {
  assert.deepEqual(parseRequest('{"id":1,"type":"join","token":"t"}'), { id: 1, type: 'join', token: 't' });
  assert.deepEqual(parseRequest('{"id":2,"type":"join","token":"t","sessionId":"s"}'), {
    id: 2,
    type: 'join',
    token: 't',
    sessionId: 's',
  });
  assert.deepEqual(parseRequest('{"id":3,"type":"createTransport","direction":"recv"}'), {
    id: 3,
    type: 'createTransport',
    direction: 'recv',
  });
  assert.deepEqual(
    parseRequest(
      '{"id":4,"type":"report","fps":29.5,"framesDecoded":10,"firstFrameMs":412.5,"glassToGlassMs":[80,90]}',
    ),
    {
      id: 4,
      type: 'report',
      report: { fps: 29.5, framesDecoded: 10, firstFrameMs: 412.5, glassToGlassMs: [80, 90] },
    },
  );
  assert.deepEqual(parseRequest('{"id":5,"type":"leave","extra":1}'), { id: 5, type: 'leave' });
  assert.deepEqual(parseRequest('{"id":6,"type":"time","t0":1}'), { id: 6, type: 'time' });
  assert.deepEqual(
    parseRequest(
      '{"id":7,"type":"report","frames":[{"rtpTimestamp":4294967295,"presentedAtMs":1.5,"x":1}],"clockSync":[{"t0":1,"serverTimeMs":2,"t1":3}]}',
    ),
    {
      id: 7,
      type: 'report',
      report: {
        frames: [{ rtpTimestamp: 4294967295, presentedAtMs: 1.5 }],
        clockSync: [{ t0: 1, serverTimeMs: 2, t1: 3 }],
      },
    },
  );
  assert.deepEqual(parseRequest('{"id":6,"type":"join","token":"t","quality":"480p"}'), {
    id: 6,
    type: 'join',
    token: 't',
    quality: '480p',
  });
  assert.deepEqual(parseRequest('{"id":7,"type":"setQuality","quality":"auto"}'), {
    id: 7,
    type: 'setQuality',
    quality: 'auto',
  });
});

test('malformed requests are refused with what was wrong', () => {
  refused('not json', /JSON/);
  refused('[1]', /object/);
  refused('{"type":"join","token":"t"}', /id/);
  refused('{"id":-1,"type":"leave"}', /id/);
  refused('{"id":1,"type":"dance"}', /type must be one of/);
  refused('{"id":1,"type":"join"}', /token/);
  refused('{"id":1,"type":"join","token":""}', /token/);
  refused(
    '{"id":1,"type":"join","token":"t","quality":"4k"}',
    /quality must be one of auto, 1080p, 720p, 480p/,
  );
  refused('{"id":1,"type":"setQuality"}', /quality/);
  refused('{"id":1,"type":"createTransport","direction":"both"}', /direction/);
  refused('{"id":1,"type":"connectTransport","transportId":"t","dtlsParameters":[]}', /dtlsParameters/);
  refused('{"id":1,"type":"consume","kind":"data","rtpCapabilities":{}}', /kind/);
  refused('{"id":1,"type":"produceData","transportId":"t","sctpStreamParameters":{},"label":"x"}', /label/);
  refused('{"id":1,"type":"report","fps":-1}', /fps/);
  refused('{"id":1,"type":"report","firstFrameMs":"fast"}', /firstFrameMs/);
  refused('{"id":1,"type":"report","firstFrameMs":600001}', /firstFrameMs/);
  refused(`{"id":1,"type":"report","glassToGlassMs":[${Array(301).fill(1).join(',')}]}`, /glassToGlassMs/);
  refused('{"id":1,"type":"report","frames":[{"rtpTimestamp":4294967296,"presentedAtMs":1}]}', /frames/);
  refused('{"id":1,"type":"report","frames":[{"rtpTimestamp":1.5,"presentedAtMs":1}]}', /frames/);
  refused('{"id":1,"type":"report","frames":[{"rtpTimestamp":1}]}', /frames/);
  refused(
    `{"id":1,"type":"report","frames":[${Array(301).fill('{"rtpTimestamp":1,"presentedAtMs":1}')}]}`,
    /frames/,
  );
  refused('{"id":1,"type":"report","clockSync":[{"t0":1,"serverTimeMs":"2","t1":3}]}', /clockSync/);
  refused('{"id":1,"type":"report","clockSync":{}}', /clockSync/);
});

test('a close frame reason is cut to 123 bytes without splitting a character', () => {
  assert.equal(closeFrameReason('REVOKED', 'bye'), 'REVOKED: bye');
  const long = closeFrameReason('REVOKED', '你'.repeat(100));
  assert.ok(Buffer.byteLength(long) <= 123);
  assert.ok(long.startsWith('REVOKED: 你'));
  assert.ok(!long.includes('\uFFFD'));
  assert.equal(new SignalClose(CloseCode.FULL, 'no seat').frameReason, 'FULL: no seat');
});
