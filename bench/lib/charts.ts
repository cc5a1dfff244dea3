// Draws the report's charts as SVG with a tiny writer, and converts them to PNG with rsvg-convert (librsvg2-bin,
// installed by install-bench-deps.sh) when it is there: the growth curve (line panels) and the cold-pull CPU bars.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../support/proc.js';
import type { Chart } from './results.js';
import { median } from './stats.js';

const W = 640;
const H = 260;
const PAD = { left: 70, right: 150, top: 34, bottom: 44 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (n: number): string => (Math.abs(n) >= 1000 ? n.toLocaleString('en-US', { maximumFractionDigits: 0 }) : String(Number(n.toPrecision(3))));

/** One panel at vertical offset `y0`: axes, title, the series as lines (or bars of medians), a legend. */
function panel(c: Chart, y0: number): string {
  const out: string[] = [];
  const x0 = PAD.left;
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const bars = c.kind === 'bars';
  const values = c.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
  const yMax = Math.max(...(values.length > 0 ? values : [1])) * 1.15 || 1;
  const yOf = (v: number): number => y0 + PAD.top + ph - (v / yMax) * ph;
  out.push(`<text x="${W / 2}" y="${y0 + 20}" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<line x1="${x0}" y1="${y0 + PAD.top + ph}" x2="${x0 + pw}" y2="${y0 + PAD.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${x0}" y1="${y0 + PAD.top}" x2="${x0}" y2="${y0 + PAD.top + ph}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i += 1) {
    const v = (yMax * i) / 4;
    out.push(`<text x="${x0 - 6}" y="${yOf(v) + 4}" text-anchor="end" font-size="11">${esc(num(v))}</text>`);
    out.push(`<line x1="${x0}" y1="${yOf(v)}" x2="${x0 + pw}" y2="${yOf(v)}" stroke="#ddd"/>`);
  }
  out.push(`<text x="14" y="${y0 + PAD.top + ph / 2}" font-size="11" transform="rotate(-90 14 ${y0 + PAD.top + ph / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`);
  if (bars) {
    const cats = c.categories ?? [];
    const groupW = pw / Math.max(1, cats.length);
    const barW = (groupW * 0.8) / Math.max(1, c.series.length);
    cats.forEach((cat, ci) => {
      out.push(`<text x="${x0 + groupW * (ci + 0.5)}" y="${y0 + PAD.top + ph + 16}" text-anchor="middle" font-size="11">${esc(cat)}</text>`);
      c.series.forEach((s, si) => {
        const v = median(s.points.filter((p) => p.x === ci).map((p) => p.y));
        if (!Number.isFinite(v)) return;
        const x = x0 + groupW * ci + groupW * 0.1 + barW * si;
        out.push(`<rect x="${x}" y="${yOf(v)}" width="${barW - 2}" height="${yOf(0) - yOf(v)}" fill="${COLORS[si % COLORS.length] ?? '#000'}"/>`);
        out.push(`<text x="${x + barW / 2}" y="${yOf(v) - 3}" text-anchor="middle" font-size="10">${esc(num(v))}</text>`);
      });
    });
  } else {
    const xs = c.series.flatMap((s) => s.points.map((p) => p.x));
    const tx = (x: number): number => (c.logX === true ? Math.log10(x) : x);
    const lo = Math.min(...xs.map(tx));
    const hi = Math.max(...xs.map(tx));
    const xOf = (x: number): number => x0 + (hi === lo ? pw / 2 : ((tx(x) - lo) / (hi - lo)) * pw);
    for (const x of [...new Set(xs)]) out.push(`<text x="${xOf(x)}" y="${y0 + PAD.top + ph + 16}" text-anchor="middle" font-size="11">${esc(num(x))}</text>`);
    out.push(`<text x="${x0 + pw / 2}" y="${y0 + H - 8}" text-anchor="middle" font-size="11">${esc(c.xLabel)}</text>`);
    c.series.forEach((s, si) => {
      const color = COLORS[si % COLORS.length] ?? '#000';
      const pts = s.points.filter((p) => Number.isFinite(p.y));
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${xOf(p.x)},${yOf(p.y)}`).join(' ')}"/>`);
      for (const p of pts) out.push(`<circle cx="${xOf(p.x)}" cy="${yOf(p.y)}" r="3" fill="${color}"/><text x="${xOf(p.x) + 5}" y="${yOf(p.y) - 5}" font-size="10">${esc(num(p.y))}</text>`);
    });
  }
  c.series.forEach((s, si) => {
    const y = y0 + PAD.top + 14 * si;
    out.push(`<rect x="${W - PAD.right + 12}" y="${y}" width="10" height="10" fill="${COLORS[si % COLORS.length] ?? '#000'}"/>`);
    out.push(`<text x="${W - PAD.right + 26}" y="${y + 9}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

function svg(charts: readonly Chart[]): string {
  const height = H * charts.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    ...charts.map((c, i) => panel(c, i * H)),
    '</svg>',
    '',
  ].join('\n');
}

/** The cold-pull bar charts as one: a group per link, a bar per mirror. */
function mergeBars(charts: readonly Chart[]): Chart | undefined {
  if (charts.length === 0) return undefined;
  const categories = charts.flatMap((c) => c.categories ?? []);
  const names = [...new Set(charts.flatMap((c) => c.series.map((s) => s.name)))];
  return {
    title: 'CPU-seconds of the mirror per cold pull (median)',
    xLabel: '',
    yLabel: 'CPU-seconds',
    kind: 'bars',
    categories,
    series: names.map((name) => ({
      name,
      points: charts.flatMap((c, ci) => c.series.filter((s) => s.name === name).flatMap((s) => s.points.map((p) => ({ x: ci, y: p.y })))),
    })),
  };
}

/**
 * Writes bench/charts/<prefix>growth and <prefix>cold-pull-cpu as SVG, and as PNG where rsvg-convert exists;
 * returns the paths (relative to `benchDir`) the report links to.
 */
export async function drawCharts(benchDir: string, prefix: string, charts: readonly Chart[], log: (msg: string) => void): Promise<string[]> {
  const files: { name: string; charts: Chart[] }[] = [];
  const lines = charts.filter((c) => c.kind === 'line');
  const bars = mergeBars(charts.filter((c) => c.kind === 'bars'));
  if (lines.length > 0) files.push({ name: `${prefix}growth`, charts: lines });
  if (bars !== undefined) files.push({ name: `${prefix}cold-pull-cpu`, charts: [bars] });
  if (files.length === 0) return [];
  const dir = join(benchDir, 'charts');
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const f of files) {
    const svgPath = join(dir, `${f.name}.svg`);
    await writeFile(svgPath, svg(f.charts));
    const png = join(dir, `${f.name}.png`);
    const r = await run('rsvg-convert', ['-o', png, svgPath], { timeoutMs: 30_000 }).catch(() => undefined);
    if (r?.code === 0) out.push(`charts/${f.name}.png`);
    else {
      log(`rsvg-convert unavailable or failed (run bash bench/install-bench-deps.sh): ${f.name} stays SVG`);
      out.push(`charts/${f.name}.svg`);
    }
  }
  return out;
}
