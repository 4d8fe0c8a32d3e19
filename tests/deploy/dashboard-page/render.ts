/// <reference lib="dom" />
// A Grafana dashboard drawn in a plain page, for the monitoring suite's pictures (Grafana is not in
// Debian): each panel at its gridPos on Grafana's 24-column grid (30 px rows), time series as
// Chart.js line charts, stats as their last value, from the query_range results the suite fetched
// from Prometheus. Bundled for the browser with esbuild (bundleForBrowser).
import {
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Title,
} from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Title, Filler);

export interface RenderSeries {
  name: string;
  /** [unix seconds, value]; NaN where Prometheus had no value. */
  points: [number, number][];
}

export interface RenderPanel {
  title: string;
  type: string;
  unit: string;
  gridPos: { x: number; y: number; w: number; h: number };
  stack: boolean;
  thresholds: { value: number; color: string }[];
  series: RenderSeries[];
}

export interface RenderDashboard {
  title: string;
  subtitle: string;
  width: number;
  /** The time range drawn, unix seconds. */
  start: number;
  end: number;
  panels: RenderPanel[];
}

const ROW = 30;
const HEADER = 56;
const COLOURS = [
  '#73bf69',
  '#f2cc0c',
  '#5794f2',
  '#ff780a',
  '#f2495c',
  '#b877d9',
  '#37872d',
  '#8ab8ff',
  '#fade2a',
  '#c4162a',
];

/** A value with the panel's unit, as Grafana would print it (the units the dashboards use). */
function format(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '–';
  const fixed = (v: number, suffix: string) =>
    `${Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)}${suffix}`;
  switch (unit) {
    case 's':
      return value === 0 ? '0 s' : Math.abs(value) < 1 ? fixed(value * 1000, ' ms') : fixed(value, ' s');
    case 'percentunit':
      return fixed(value * 100, '%');
    case 'bytes':
      return value >= 2 ** 30 ? fixed(value / 2 ** 30, ' GiB') : fixed(value / 2 ** 20, ' MiB');
    case 'bps':
      return value >= 1e6 ? fixed(value / 1e6, ' Mb/s') : fixed(value / 1e3, ' kb/s');
    case 'reqps':
      return fixed(value, ' req/s');
    case 'ops':
      return fixed(value, ' ops/s');
    case 'fps':
      return fixed(value, ' fps');
    default:
      return Number.isInteger(value) ? String(value) : fixed(value, '');
  }
}

function clock(seconds: number): string {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

function stat(body: HTMLElement, panel: RenderPanel): void {
  body.className = 'stat';
  for (const series of panel.series) {
    const last = [...series.points].reverse().find(([, v]) => Number.isFinite(v));
    const value = last ? last[1] : Number.NaN;
    const colour = [...panel.thresholds].reverse().find((t) => value >= t.value)?.color ?? '#73bf69';
    const cell = document.createElement('div');
    cell.innerHTML = `<div class="value" style="color:${colour}"></div><div class="name"></div>`;
    (cell.querySelector('.value') as HTMLElement).textContent = format(value, panel.unit);
    (cell.querySelector('.name') as HTMLElement).textContent = series.name;
    body.append(cell);
  }
}

function timeseries(body: HTMLElement, panel: RenderPanel, range: { start: number; end: number }): void {
  const canvas = document.createElement('canvas');
  body.append(canvas);
  const line = panel.thresholds.find((t) => t.color === 'red');
  const datasets = panel.series.map((series, i) => ({
    label: series.name,
    data: series.points.map(([t, v]) => ({ x: t, y: Number.isFinite(v) ? v : null })),
    borderColor: COLOURS[i % COLOURS.length],
    backgroundColor: `${COLOURS[i % COLOURS.length]}33`,
    borderWidth: 1.5,
    pointRadius: 0,
    spanGaps: false,
    fill: panel.stack ? (i === 0 ? 'origin' : '-1') : false,
  }));
  if (line) {
    datasets.push({
      label: `threshold ${format(line.value, panel.unit)}`,
      data: [
        { x: range.start, y: line.value },
        { x: range.end, y: line.value },
      ],
      borderColor: '#f2495c',
      backgroundColor: '#f2495c',
      borderWidth: 1,
      pointRadius: 0,
      spanGaps: true,
      fill: false,
    });
  }
  new Chart(canvas, {
    type: 'line',
    data: { datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      color: '#ccccdc',
      scales: {
        x: {
          type: 'linear',
          min: range.start,
          max: range.end,
          ticks: { color: '#9fa7b3', maxTicksLimit: 6, callback: (v) => clock(Number(v)) },
          grid: { color: '#2c3235' },
        },
        y: {
          stacked: panel.stack,
          beginAtZero: true,
          ticks: { color: '#9fa7b3', maxTicksLimit: 5, callback: (v) => format(Number(v), panel.unit) },
          grid: { color: '#2c3235' },
        },
      },
      plugins: {
        legend: {
          position: 'bottom',
          labels: { color: '#ccccdc', boxWidth: 10, boxHeight: 2, font: { size: 10 } },
        },
      },
    },
  });
}

/** Lays the dashboard out and draws every panel; resolves once drawn. Returns the page height. */
function render(dashboard: RenderDashboard): number {
  document.body.innerHTML = '';
  const style = document.createElement('style');
  style.textContent = `
    body { margin: 0; background: #111217; font: 12px Inter, Helvetica, Arial, sans-serif; color: #ccccdc; }
    header { height: ${HEADER}px; padding: 10px 16px; box-sizing: border-box; }
    header h1 { margin: 0; font-size: 18px; font-weight: 500; }
    header p { margin: 2px 0 0; color: #9fa7b3; }
    .panel { position: absolute; box-sizing: border-box; padding: 4px; }
    .frame { background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; height: 100%;
      box-sizing: border-box; display: flex; flex-direction: column; }
    .title { padding: 6px 8px 2px; font-weight: 500; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .body { flex: 1; position: relative; min-height: 0; padding: 0 6px 4px; }
    .stat { display: flex; align-items: center; justify-content: space-around; }
    .stat .value { font-size: 34px; font-weight: 500; text-align: center; }
    .stat .name { text-align: center; color: #9fa7b3; }`;
  document.head.append(style);
  const header = document.createElement('header');
  header.innerHTML = '<h1></h1><p></p>';
  (header.querySelector('h1') as HTMLElement).textContent = dashboard.title;
  (header.querySelector('p') as HTMLElement).textContent = dashboard.subtitle;
  document.body.append(header);
  const column = dashboard.width / 24;
  let bottom = 0;
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    const box = document.createElement('div');
    box.className = 'panel';
    Object.assign(box.style, {
      left: `${x * column}px`,
      top: `${HEADER + y * ROW}px`,
      width: `${w * column}px`,
      height: `${h * ROW}px`,
    });
    box.innerHTML = '<div class="frame"><div class="title"></div><div class="body"></div></div>';
    (box.querySelector('.title') as HTMLElement).textContent = panel.title;
    document.body.append(box);
    const body = box.querySelector('.body') as HTMLElement;
    if (panel.type === 'stat') stat(body, panel);
    else timeseries(body, panel, dashboard);
    bottom = Math.max(bottom, HEADER + (y + h) * ROW);
  }
  return bottom + 8;
}

(globalThis as unknown as { renderDashboard: typeof render }).renderDashboard = render;
