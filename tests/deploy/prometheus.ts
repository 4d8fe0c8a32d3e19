// Debian's Prometheus as the monitoring suite runs it: a real `prometheus` process on a loopback
// port, its data in a temporary dir, scraping the targets it is given every couple of seconds and
// evaluating the project's rule files; queried through its HTTP API like Grafana does.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@cphone/proto/testing';
import { stringify } from 'yaml';
import { freePort } from '../e2e/harness.js';

export interface PrometheusOptions {
  /** Scrape targets (host:port) by job name. */
  jobs: Record<string, string[]>;
  ruleFiles: string[];
  /** Scrape and rule evaluation interval, seconds. */
  intervalSeconds: number;
}

export interface PromSeries {
  metric: Record<string, string>;
  /** [unix seconds, value as Prometheus prints it]. */
  values: [number, string][];
}

export interface Prometheus {
  readonly url: string;
  /** When the process started, unix seconds. */
  readonly started: number;
  query(expr: string): Promise<PromSeries[]>;
  queryRange(expr: string, start: number, end: number, step: number): Promise<PromSeries[]>;
  /** Label sets of the series matching `match` between start and end (Grafana's label_values). */
  series(match: string, start: number, end: number): Promise<Record<string, string>[]>;
  /** Alerts in state firing or pending. */
  alerts(): Promise<{ labels: Record<string, string>; state: string }[]>;
  close(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-prometheus-'));
  const interval = `${options.intervalSeconds}s`;
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles,
    scrape_configs: Object.entries(options.jobs).map(([job, targets]) => ({
      job_name: job,
      static_configs: [{ targets }],
    })),
  };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let log = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = Date.now() / 1000;
  const api = async <T>(path: string, params: Record<string, string | string[]>): Promise<T> => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) body.append(k, one);
    const res = await fetch(`${url}${path}`, { method: 'POST', body });
    const json = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (json.status !== 'success')
      throw new Error(`${path} ${JSON.stringify(params)}: ${json.errorType}: ${json.error}`);
    return json.data;
  };
  try {
    await waitFor(
      'Prometheus ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${log}`);
        return (await fetch(`${url}/-/ready`)).status;
      },
      (status) => status === 200,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (error) {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const toSeries = (data: {
    result: { metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }[];
  }) => data.result.map((r) => ({ metric: r.metric, values: r.values ?? (r.value ? [r.value] : []) }));
  return {
    url,
    started,
    query: async (expr) => toSeries(await api('/api/v1/query', { query: expr })),
    queryRange: async (expr, start, end, step) =>
      toSeries(
        await api('/api/v1/query_range', {
          query: expr,
          start: String(start),
          end: String(end),
          step: String(step),
        }),
      ),
    series: (match, start, end) =>
      api('/api/v1/series', { 'match[]': match, start: String(start), end: String(end) }),
    alerts: async () => {
      const res = await fetch(`${url}/api/v1/alerts`);
      return ((await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } })
        .data.alerts;
    },
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
