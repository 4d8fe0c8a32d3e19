import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { HostStats } from './host-stats.js';
import { cpuPercent, parseLoadAvg, parseMemInfo, parseProcStat } from './proc.js';

test("parses this machine's /proc files", async () => {
  const stat = parseProcStat(await readFile('/proc/stat', 'utf8'));
  assert.ok(stat.total > 0 && stat.busy > 0 && stat.busy < stat.total);
  const load = parseLoadAvg(await readFile('/proc/loadavg', 'utf8'));
  assert.ok(load >= 0);
  const mem = parseMemInfo(await readFile('/proc/meminfo', 'utf8'));
  assert.ok(mem.totalBytes > 0 && mem.availableBytes > 0 && mem.availableBytes <= mem.totalBytes);
});

test('CPU percent is the busy share of the ticks between two samples', () => {
  const a = parseProcStat('cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n');
  const b = parseProcStat('cpu  160 0 140 780 120 0 0 0 0 0\n');
  assert.deepEqual(a, { busy: 200, total: 1000 });
  // 100 busy ticks out of 200.
  assert.equal(cpuPercent(a, b), 50);
  assert.equal(cpuPercent(b, b), 0);
  assert.throws(() => parseProcStat('intr 1 2 3\n'), /no aggregate "cpu" line/);
});

test('memory falls back to MemFree + Cached + Buffers on kernels without MemAvailable', () => {
  const mem = parseMemInfo(
    'MemTotal:       1000 kB\nMemFree:         100 kB\nBuffers:          10 kB\nCached:          200 kB\n',
  );
  assert.deepEqual(mem, { totalBytes: 1000 * 1024, availableBytes: 310 * 1024 });
  assert.throws(() => parseMemInfo('MemFree: 1 kB\n'), /MemTotal/);
});

test('HostStats reports capacity and a load sample from /proc and statfs', async () => {
  const stats = new HostStats({ dataDir: tmpdir() });
  const capacity = await stats.capacity();
  assert.ok(capacity.vcpuMillicores >= 1000 && capacity.vcpuMillicores % 1000 === 0);
  assert.ok(capacity.memoryBytes > 0 && capacity.storageBytes > 0);
  const first = await stats.sample();
  assert.equal(first.cpuPercent, 0, 'no baseline yet');
  const second = await stats.sample();
  assert.ok(second.cpuPercent >= 0 && second.cpuPercent <= 100);
  assert.ok(second.diskUsedBytes > 0 && second.diskUsedBytes <= second.diskTotalBytes);
  assert.equal(second.memoryTotalBytes, capacity.memoryBytes);
});
