// deploy/monitoring checked the way an operator relies on it. The rules: `promtool check rules` and
// `promtool test rules` (every alert tested firing and not firing), each alert's severity,
// annotations and runbook paragraph. The scrape configuration: `promtool check config`. The
// dashboards: Debian's Prometheus scrapes a running platform (the real control plane on the
// machine's PostgreSQL, a real agent with virtual phones, its sfu streaming to Chromium) every 2 s
// for about a minute while the suite drives it, then every panel's query, with the dashboard's
// variables resolved as Grafana would, must parse and return data; the recording rules too, and no
// alert may fire on the healthy platform. Each dashboard is then drawn from that data in Chromium
// (Grafana is not in Debian) into a PNG: docs/screenshots/dashboard-<name>.png with
// UPDATE_SCREENSHOTS=1, else a temporary dir.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Agent } from '@cphone/host-agent';
import { HostState, StreamRights, TenantKind, TenantService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { bundleForBrowser } from '@cphone/proto/testing/browser';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type { Browser } from 'playwright-core';
import { parse } from 'yaml';
import { freePort, type Harness, runningPhone, shell, startHarness, startPhones } from '../e2e/harness.js';
import type { RenderDashboard, RenderPanel } from './dashboard-page/render.js';
import { type Prometheus, type PromSeries, startPrometheus } from './prometheus.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MONITORING = join(ROOT, 'deploy/monitoring');
const RULE_FILES = ['rules/cphone-recording.yml', 'rules/cphone-alerts.yml'].map((f) => join(MONITORING, f));
const DASHBOARDS = join(MONITORING, 'grafana/dashboards');
/** Scrape and evaluation interval of the suite's Prometheus, seconds. */
const INTERVAL = 2;

before(() => {
  const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-prometheus.sh')], { encoding: 'utf8' });
  assert.equal(setup.status, 0, `scripts/setup-prometheus.sh: ${setup.stderr}`);
});

function run(command: string, args: string[], cwd = MONITORING) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

// biome-ignore lint/suspicious/noExplicitAny: rule and dashboard files are plain YAML/JSON read field by field.
type Doc = Record<string, any>;
const readYaml = async (path: string): Promise<Doc> => parse(await readFile(path, 'utf8')) as Doc;

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      (m[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('rules', () => {
  test('promtool check rules accepts every rule file', () => {
    const { status, output } = run('promtool', ['check', 'rules', ...RULE_FILES]);
    assert.equal(status, 0, output);
    assert.match(output, /SUCCESS: 12 rules found/);
  });

  test('promtool test rules: the unit tests in deploy/monitoring/tests pass', async () => {
    const files = (await readdir(join(MONITORING, 'tests')))
      .filter((f) => f.endsWith('.yml'))
      .map((f) => `tests/${f}`);
    assert.ok(files.length >= 2, files.join());
    const { status, output } = run('promtool', ['test', 'rules', ...files]);
    assert.equal(status, 0, output);
    assert.doesNotMatch(output, /FAILED/);
  });

  test('every alert has a severity, a summary, a description and a runbook paragraph, and is tested firing and not firing', async () => {
    const alerts = (await readYaml(RULE_FILES[1] as string)).groups.flatMap((g: Doc) => g.rules) as Doc[];
    const readme = anchors(await readFile(join(ROOT, 'deploy/README.md'), 'utf8'));
    const cases: Doc[] = [];
    for (const file of await readdir(join(MONITORING, 'tests'))) {
      if (!file.endsWith('.yml')) continue;
      for (const t of (await readYaml(join(MONITORING, 'tests', file))).tests)
        cases.push(...(t.alert_rule_test ?? []));
    }
    for (const rule of alerts) {
      const name = rule.alert as string;
      assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, `${name}: severity`);
      assert.ok(
        rule.annotations?.summary && rule.annotations?.description,
        `${name}: summary and description`,
      );
      const url = rule.annotations?.runbook_url as string;
      assert.match(url, /^deploy\/README\.md#[a-z0-9-]+$/, `${name}: runbook_url`);
      assert.ok(readme.has(url.split('#')[1] ?? ''), `${name}: ${url} names no heading in deploy/README.md`);
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${name}: no test where it fires`,
      );
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${name}: no test where it stays quiet`,
      );
    }
    assert.equal(alerts.length, 12);
  });

  test('promtool check config accepts the example scrape configuration', async (t) => {
    // Debian builds Prometheus without Kubernetes service discovery: the check runs on a copy whose
    // kubernetes_sd_configs are swapped for static targets, with the rule files at their paths here.
    const config = await readYaml(join(MONITORING, 'prometheus.yml'));
    const jobs = config.scrape_configs.map((s: Doc) => s.job_name);
    assert.deepEqual(jobs, ['cphone-control-plane', 'cphone-agent'], 'the job names the rules select on');
    for (const scrape of config.scrape_configs) {
      if (!scrape.kubernetes_sd_configs) continue;
      delete scrape.kubernetes_sd_configs;
      scrape.static_configs = [{ targets: ['cp-0:8080'] }];
    }
    config.rule_files = RULE_FILES;
    const dir = await mkdtemp(join(tmpdir(), 'cphone-promcfg-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { stringify } = await import('yaml');
    await writeFile(join(dir, 'prometheus.yml'), stringify(config));
    const { status, output } = run('promtool', [
      'check',
      'config',
      '--syntax-only',
      join(dir, 'prometheus.yml'),
    ]);
    assert.equal(status, 0, output);
  });
});

interface Dashboard {
  file: string;
  json: Doc;
}

async function dashboards(): Promise<Dashboard[]> {
  const files = (await readdir(DASHBOARDS)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      file,
      json: JSON.parse(await readFile(join(DASHBOARDS, file), 'utf8')) as Doc,
    })),
  );
}

test('the dashboards are provisioned from their folder, on the provisioned data source', async () => {
  const provider = await readYaml(join(MONITORING, 'grafana/provisioning/dashboards/cphone.yml'));
  assert.equal(provider.providers[0].type, 'file');
  const source = await readYaml(join(MONITORING, 'grafana/provisioning/datasources/cphone.yml'));
  assert.equal(source.datasources[0].type, 'prometheus');
  const all = await dashboards();
  assert.deepEqual(
    all.map((d) => d.file),
    ['control-plane.json', 'fleet.json', 'host.json', 'streaming.json'],
  );
  const uids = new Set(all.map((d) => d.json.uid));
  assert.equal(uids.size, all.length, 'unique uids');
  for (const { file, json } of all) {
    assert.ok(json.panels.length > 0, file);
    for (const panel of json.panels) {
      assert.equal(
        panel.datasource?.uid,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template.
        '${datasource}',
        `${file} ${panel.title}: the data source variable`,
      );
      assert.ok(panel.targets.length > 0 && panel.gridPos.w > 0, `${file} ${panel.title}`);
    }
  }
});

describe('dashboards on a running platform', () => {
  let h: Harness;
  let agent: Agent;
  let runtime: Awaited<ReturnType<typeof startPhones>>['runtime'];
  let prom: Prometheus;
  let browser: Browser;
  let viewer: ViewerPage | undefined;
  let load: Promise<void> | undefined;
  let stopping = false;
  /** Every panel's series, by dashboard file, from the test below, for the pictures. */
  const results = new Map<string, { panel: Doc; series: { name: string; points: [number, number][] }[] }[]>();
  let window: { start: number; end: number } = { start: 0, end: 0 };

  before(async () => {
    // The control plane in production runs on PostgreSQL (the pool panels have nothing on PGlite).
    process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
    h = await startHarness();
    ({ runtime } = await startPhones(h));
    agent = await h.startAgent({
      env: { CPHONE_STREAM_PORT: String(await freePort()), CPHONE_USAGE_INTERVAL_MS: '5000' },
      deps: { runtime },
    });
    await h.waitForHost(HostState.READY, true);
    prom = await startPrometheus({
      jobs: {
        'cphone-control-plane': [new URL(h.plane.httpUrl).host],
        'cphone-agent': [`127.0.0.1:${agent.httpPort}`],
      },
      ruleFiles: RULE_FILES,
      intervalSeconds: INTERVAL,
    });
    // Both targets scraped once before anything happens, so every change below is in the data.
    await waitFor(
      'the first scrape of both jobs',
      () => prom.query('count(up == 1)'),
      (r) => Number(r[0]?.values[0]?.[1]) === 2,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    browser = await launchChromium();
  });

  after(async () => {
    stopping = true;
    await load?.catch(() => undefined);
    await viewer?.close().catch(() => undefined);
    await browser?.close();
    await prom?.close();
    await agent?.close();
    await runtime?.close();
    await h?.close();
  });

  /** What an operator's platform does: phones created (one past a quota, one nowhere to go), shell commands, a viewer, API reads. */
  async function drive(): Promise<void> {
    const streamed = await runningPhone(h, 'watched');
    await runningPhone(h, 'second');
    const tenants = h.client(TenantService);
    const customer = await tenants.createTenant({
      kind: TenantKind.CUSTOMER,
      displayName: 'capped',
      parentTenantId: h.tenantId,
    });
    const capped = customer.tenant?.tenantId ?? '';
    await tenants.setQuota({ quota: { tenantId: capped, maxDevices: 1 } });
    const ask = (tenantId: string, pool: string) =>
      h.devices.batchCreateDevices({
        tenantId,
        requests: [{ spec: { imageId: h.imageId }, placement: { nodeSelector: { pool } } }],
      });
    await ask(capped, 'e2e');
    await assert.rejects(ask(capped, 'e2e'), /max_devices/);
    await assert.rejects(ask(h.tenantId, 'nowhere'), /cannot be placed/);
    const { streamSession } = await h.devices.createStreamSession({
      deviceId: streamed,
      rights: StreamRights.VIEW,
    });
    assert.ok(streamSession);
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    viewer = await ViewerPage.open(context);
    await viewer.start({ url: streamSession.sfuUrl, token: streamSession.token, reportEveryMs: 500 });
    // Steady traffic for the rest of the run: reads every 200 ms, a shell command every 3 s.
    load = (async () => {
      for (let i = 0; !stopping; i++) {
        await h.devices.listDevices({}).catch(() => undefined);
        await h.devices.getDevice({ deviceId: streamed }).catch(() => undefined);
        if (i % 15 === 0) await shell(h, streamed, 'echo ok').catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
  }

  /**
   * Grafana's $__rate_interval: four times the data source's scrape interval setting, or the step
   * plus one, whichever is longer. The suite's data source declares 5 s (a minimum above the real
   * 2 s, as Grafana allows): the players' and the sfu's figures come in every few seconds.
   */
  const rateInterval = `${Math.max(4 * 5, INTERVAL + 5)}s`;

  /** The dashboard's variables as Grafana resolves them: label_values queries, All as the allValue. */
  async function variables(json: Doc): Promise<Record<string, string>> {
    const values: Record<string, string> = { __rate_interval: rateInterval };
    for (const v of json.templating.list as Doc[]) {
      if (v.type !== 'query') continue;
      const m = /^label_values\((.+), *(\w+)\)$/.exec(v.definition);
      assert.ok(m, `${json.uid} $${v.name}: ${v.definition}`);
      const found = await prom.series(m[1] as string, prom.started, Date.now() / 1000);
      const options = [
        ...new Set(found.map((s) => s[m[2] as string]).filter((x): x is string => !!x)),
      ].sort();
      assert.ok(options.length > 0, `${json.uid} $${v.name}: ${v.definition} has no values`);
      values[v.name] = v.includeAll ? v.allValue : (options[0] as string);
    }
    return values;
  }

  const substitute = (expr: string, vars: Record<string, string>) =>
    expr.replace(/\$(\w+)/g, (whole, name: string) => vars[name] ?? whole);

  const finite = (series: PromSeries[]) =>
    series.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));

  test('every panel’s query parses and returns data after about a minute of scraping', async (t) => {
    await drive();
    const all = await dashboards();
    // A minute of scrapes of both jobs, and the viewer's latency reports in Prometheus.
    await waitFor(
      'a minute of scrapes and glass-to-glass figures in Prometheus',
      async () => ({
        scrapes: Number((await prom.query('min(count_over_time(up[10m]))'))[0]?.values[0]?.[1] ?? 0),
        frames: Number(
          (await prom.query('sum(cphone_stream_glass_to_glass_seconds_count)'))[0]?.values[0]?.[1] ?? 0,
        ),
      }),
      (v) => v.scrapes >= 60 / INTERVAL && v.frames > 0,
      { timeoutMs: 150_000, intervalMs: 2000 },
    );
    window = { start: Math.ceil(prom.started), end: Math.floor(Date.now() / 1000) };
    const empty: string[] = [];
    for (const { file, json } of all) {
      const vars = await variables(json);
      const panels: { panel: Doc; series: { name: string; points: [number, number][] }[] }[] = [];
      for (const panel of json.panels as Doc[]) {
        const series: { name: string; points: [number, number][] }[] = [];
        for (const target of panel.targets as Doc[]) {
          const expr = substitute(target.expr, vars);
          const got = await prom.queryRange(expr, window.start, window.end, INTERVAL);
          if (!finite(got)) empty.push(`${file} "${panel.title}": ${expr}`);
          for (const s of got)
            series.push({
              name: (target.legendFormat as string).replace(
                /\{\{ *(\w+) *\}\}/g,
                (_, l: string) => s.metric[l] ?? '',
              ),
              points: s.values.map(([ts, v]) => [ts, Number(v)]),
            });
        }
        panels.push({ panel, series });
      }
      results.set(file, panels);
      t.diagnostic(
        `${file}: ${panels.length} panels, ${panels.reduce((n, p) => n + p.series.length, 0)} series`,
      );
    }
    assert.deepEqual(empty, [], 'panels that show nothing');
  });

  test('every recording rule has data, and no alert fires on the healthy platform', async () => {
    const rules = (await readYaml(RULE_FILES[0] as string)).groups.flatMap((g: Doc) => g.rules) as Doc[];
    const missing: string[] = [];
    for (const rule of rules) if (!finite(await prom.query(rule.record))) missing.push(rule.record);
    assert.deepEqual(missing, []);
    const firing = (await prom.alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname);
    assert.deepEqual(firing, []);
  });

  test('each dashboard is drawn from that data in Chromium', async (t) => {
    assert.ok(results.size === 4, 'the panel data from the test above');
    const out =
      process.env.UPDATE_SCREENSHOTS === '1'
        ? join(ROOT, 'docs/screenshots')
        : await mkdtemp(join(tmpdir(), 'cphone-dashboards-'));
    const script = await bundleForBrowser(
      fileURLToPath(new URL('./dashboard-page/render.ts', import.meta.url)),
    );
    const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body></body></html>');
    await page.addScriptTag({ content: script });
    const when = `${new Date(window.start * 1000).toISOString().slice(0, 19)}Z`;
    for (const { file, json } of await dashboards()) {
      const panels: RenderPanel[] = (results.get(file) ?? []).map(({ panel, series }) => ({
        title: panel.title,
        type: panel.type,
        unit: panel.fieldConfig?.defaults?.unit ?? 'short',
        gridPos: panel.gridPos,
        stack: panel.fieldConfig?.defaults?.custom?.stacking?.mode === 'normal',
        thresholds: (panel.fieldConfig?.defaults?.thresholds?.steps ?? [])
          .filter((s: Doc) => s.value !== null)
          .map((s: Doc) => ({ value: s.value, color: s.color })),
        series,
      }));
      const dashboard: RenderDashboard = {
        title: json.title,
        subtitle: `${window.end - window.start} s from ${when}: Debian's Prometheus scraping the running platform every ${INTERVAL} s`,
        width: 1600,
        start: window.start,
        end: window.end,
        panels,
      };
      const height = await page.evaluate(
        (d) => (globalThis as unknown as { renderDashboard(d: RenderDashboard): number }).renderDashboard(d),
        dashboard,
      );
      await page.setViewportSize({ width: 1600, height });
      const canvases = await page.locator('canvas').count();
      assert.equal(
        canvases,
        panels.filter((p) => p.type !== 'stat').length,
        `${file}: a chart per time series panel`,
      );
      const name = `dashboard-${file.replace(/\.json$/, '')}.png`;
      const png = await page.screenshot({ path: join(out, name) });
      assert.ok(png.length > 20_000, `${name}: ${png.length} bytes`);
      t.diagnostic(`${join(out, name)}: ${png.length} bytes`);
    }
    await page.close();
    if (process.env.UPDATE_SCREENSHOTS !== '1') await rm(out, { recursive: true, force: true });
  });
});
