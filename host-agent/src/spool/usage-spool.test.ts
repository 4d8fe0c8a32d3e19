import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { UsageSampler } from './usage-sampler.js';
import { type SampleInit, UsageSpool } from './usage-spool.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-spool-'));
  dirs.push(dir);
  return dir;
}

function sample(deviceId: string, minute: number): SampleInit {
  return {
    deviceId,
    tenantId: 't-1',
    startMs: minute * 60_000,
    endMs: (minute + 1) * 60_000,
    vcpuMillicores: 2000,
    memoryMib: 4096,
    storageGib: 16,
    state: 5,
    specRevision: 1,
  };
}

test('unacknowledged samples survive a crash with their sequences; acked ones are gone; the sequence continues', async () => {
  const dir = await tempDir();
  const first = await UsageSpool.open({ dir });
  const written = await first.append([
    sample('d-1', 0),
    sample('d-2', 0),
    sample('d-1', 1),
    sample('d-2', 1),
  ]);
  assert.deepEqual(
    written.map((s) => s.sequence),
    [1, 2, 3, 4],
  );
  await first.acknowledge(2);
  // Crash: the object is dropped without close(); nothing else is flushed.

  const second = await UsageSpool.open({ dir });
  assert.deepEqual(
    second.pending().map((s) => [s.sequence, s.deviceId, s.startMs]),
    [
      [3, 'd-1', 60_000],
      [4, 'd-2', 60_000],
    ],
  );
  assert.equal(second.ackedSequence, 2);
  const more = await second.append([sample('d-1', 2)]);
  assert.equal(more[0]?.sequence, 5);
  await second.acknowledge(5);
  assert.equal(second.pendingCount, 0);
  await second.close();

  // Everything acknowledged and compacted away: the counter still survives.
  assert.equal(await readFile(join(dir, 'usage.jsonl'), 'utf8'), '');
  const third = await UsageSpool.open({ dir });
  assert.equal(third.pendingCount, 0);
  assert.equal((await third.append([sample('d-3', 3)]))[0]?.sequence, 6);
  await third.close();
});

test('a torn last line from a crash mid-write is dropped and its sequence is not skipped twice', async () => {
  const dir = await tempDir();
  const spool = await UsageSpool.open({ dir });
  await spool.append([sample('d-1', 0)]);
  await spool.close();
  await appendFile(join(dir, 'usage.jsonl'), '{"sequence":2,"deviceId":"d-');

  const reopened = await UsageSpool.open({ dir });
  assert.deepEqual(
    reopened.pending().map((s) => s.sequence),
    [1],
  );
  const next = await reopened.append([sample('d-2', 1)]);
  assert.equal(next[0]?.sequence, 2);
  await reopened.close();
  const again = await UsageSpool.open({ dir });
  assert.deepEqual(
    again.pending().map((s) => [s.sequence, s.deviceId]),
    [
      [1, 'd-1'],
      [2, 'd-2'],
    ],
  );
  await again.close();
});

test('stale and out-of-range acks are harmless; compaction keeps the unacked tail', async () => {
  const dir = await tempDir();
  const spool = await UsageSpool.open({ dir, compactAfter: 3 });
  await spool.append(Array.from({ length: 5 }, (_, i) => sample('d-1', i)));
  await spool.acknowledge(3);
  await spool.acknowledge(1);
  assert.equal(spool.ackedSequence, 3);
  const lines = (await readFile(join(dir, 'usage.jsonl'), 'utf8')).trim().split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { sequence: number }).sequence),
    [4, 5],
  );
  await spool.acknowledge(99);
  assert.equal(spool.ackedSequence, 5, 'an ack past the last written sequence is clamped');
  assert.equal((await spool.append([sample('d-1', 9)]))[0]?.sequence, 6);
  assert.deepEqual(
    spool.pending(0, 10).map((s) => s.sequence),
    [6],
  );
  await spool.close();
});

test('the sampler writes one sample per metered device for the aligned interval', async () => {
  const dir = await tempDir();
  const spool = await UsageSpool.open({ dir });
  const appended: number[][] = [];
  const sampler = new UsageSampler({
    spool,
    intervalMs: 60_000,
    devices: () => [
      {
        deviceId: 'd-1',
        tenantId: 't-1',
        vcpuMillicores: 1000,
        memoryMib: 2048,
        storageGib: 8,
        state: 5,
        specRevision: 3,
      },
      {
        deviceId: 'd-2',
        tenantId: 't-2',
        vcpuMillicores: 2000,
        memoryMib: 4096,
        storageGib: 16,
        state: 4,
        specRevision: 1,
      },
    ],
    onAppended: (samples) => appended.push(samples.map((s) => s.sequence)),
    logger: pino({ level: 'silent' }),
    now: () => 125_000,
  });
  const samples = await sampler.sampleNow();
  assert.deepEqual(appended, [[1, 2]]);
  assert.deepEqual(
    samples.map((s) => [s.deviceId, s.startMs, s.endMs, s.specRevision]),
    [
      ['d-1', 60_000, 120_000, 3],
      ['d-2', 60_000, 120_000, 1],
    ],
  );
  await sampler.stop();
  await spool.close();
});

test('the sampler takes each sampled device’s egress bytes and they survive a reopen of the spool', async () => {
  const dir = await tempDir();
  let spool = await UsageSpool.open({ dir });
  const asked: string[][] = [];
  const device = {
    tenantId: 't-1',
    vcpuMillicores: 1000,
    memoryMib: 2048,
    storageGib: 8,
    state: 5,
    specRevision: 1,
  };
  const sampler = new UsageSampler({
    spool,
    intervalMs: 60_000,
    devices: () => [
      { ...device, deviceId: 'd-1' },
      { ...device, deviceId: 'd-2' },
    ],
    egress: async (ids) => {
      asked.push([...ids]);
      return new Map([['d-1', 123_456n]]);
    },
    onAppended: () => undefined,
    logger: pino({ level: 'silent' }),
    now: () => 125_000,
  });
  const samples = await sampler.sampleNow();
  assert.deepEqual(asked, [['d-1', 'd-2']]);
  assert.deepEqual(
    samples.map((s) => [s.deviceId, s.egressBytes]),
    [
      ['d-1', 123_456],
      ['d-2', 0],
    ],
  );
  await sampler.stop();
  await spool.close();
  spool = await UsageSpool.open({ dir });
  assert.deepEqual(
    spool.pending().map((s) => s.egressBytes),
    [123_456, 0],
  );
  await spool.close();
});
