// Cost as the index grows (issue 14 §4): for each synthetic index size, pullgate's start-up time to /readyz, its
// idle RSS, its rate of manifest hits by tag over random tags (wrk with a Lua script), its RSS after them, and the
// wall time of `pullgate cache stats`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../support/proc.js';
import { PULLGATE_CLI, type Pullgate, startFlags, startPullgate } from '../../support/pullgate.js';
import { ACCEPT } from '../lib/constants.js';
import type { BenchContext } from '../lib/context.js';
import { expectBody, procCpuSeconds, procStatusKiB } from '../lib/probes.js';
import { samplesText } from '../lib/render.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, type Verdict, emptyReport } from '../lib/results.js';
import { median } from '../lib/stats.js';
import { type SyntheticIndex, generateSyntheticIndex } from '../lib/synthetic-index.js';
import { runWrk, wrkErrors } from '../lib/wrk.js';
import type { Measure } from './types.js';

/** The synthetic rows belong to a registry pullgate never reaches: every tag is within its TTL. */
const REGISTRY = 'growth.bench.invalid';

interface Point {
  rows: number;
  index: SyntheticIndex;
  startupS: number[];
  idleKiB: number[];
  rates: number[];
  /** The same rate over a hot set of HOT_TAGS tags (what a fleet asks for all day), whatever the index size. */
  hotRates: number[];
  /**
   * CPU-seconds of the server per 10,000 requests in each of those runs: the cost of a request, which a busy
   * machine shifts less than the rate (the rate also depends on how much of the cores wrk and the rest get).
   */
  cpuPer10k: number[];
  hotCpuPer10k: number[];
  rateErrors: number;
  afterKiB: number | undefined;
  stats: { seconds: number; ok: boolean; detail: string } | undefined;
}

/**
 * Tags of the hot set: the smallest index's tag count, so the hot-set rate at 1M rows asks for as many distinct
 * tags as the uniform rate at 10k rows and differs from it only by the size of the index around them.
 */
const HOT_TAGS = 2_000;

/** wrk's Lua script: each request asks for a random one of the index's first `limit` tags (all by default). */
export function tagScript(index: SyntheticIndex, limit = index.tags): string {
  return [
    `local tags, repos = ${Math.min(limit, index.tags)}, ${index.repositories}`,
    'math.randomseed(os.time())',
    'request = function()',
    '  local t = math.random(0, tags - 1)',
    `  return wrk.format("GET", "/v2/growth/r" .. (t % repos) .. "/manifests/t" .. t)`,
    'end',
    '',
  ].join('\n');
}

async function startOn(ctx: BenchContext, name: string, root: string): Promise<{ pg: Pullgate; seconds: number }> {
  const started = performance.now();
  const pg = await startPullgate(
    ctx.ws,
    name,
    { defaultRegistry: REGISTRY, registries: [{ key: REGISTRY, url: 'http://127.0.0.1:9', username: 'x', password: 'x' }], cache: { tagTTL: '24h' } },
    { storagePath: root, readyPath: '/readyz', pollMs: 10 },
  );
  return { pg, seconds: (performance.now() - started) / 1000 };
}

async function cacheStats(configPath: string): Promise<Point['stats']> {
  const started = performance.now();
  const r = await run(process.execPath, [...startFlags(), PULLGATE_CLI, 'cache', 'stats', '--config', configPath], { timeoutMs: 300_000 });
  const seconds = (performance.now() - started) / 1000;
  const lastLine = r.stderr.trim().split('\n').pop() ?? '';
  return { seconds, ok: r.code === 0, detail: r.code === 0 ? 'ok' : `exit ${r.code}: ${lastLine.slice(0, 200)}` };
}

/** A point's index, generated, with its server started (BENCH_REPEAT times for the start-up figure) and kept running. */
async function preparePoint(ctx: BenchContext, rows: number): Promise<{ point: Point; pg: Pullgate; dir: string }> {
  const name = `growth-${rows}`;
  const root = await ctx.ws.mkdir(name, 'data');
  const index = generateSyntheticIndex(root, { rows, registry: REGISTRY, now: Date.now() });
  ctx.log(`${name}: ${fmt(rows)} rows (${fmt(index.manifests)} manifests), ${fmt(index.tags)} tags, index.db ${fmt(index.indexBytes / 2 ** 20, 1)} MiB, generated in ${index.seconds.toFixed(1)} s`);
  // The generator's pages are still dirty: written back now, not during another point's figures.
  await run('sync', []);
  const point: Point = { rows, index, startupS: [], idleKiB: [], rates: [], hotRates: [], cpuPer10k: [], hotCpuPer10k: [], rateErrors: 0, afterKiB: undefined, stats: undefined };
  let pg: Pullgate | undefined;
  for (let i = 0; i < ctx.config.repeat; i += 1) {
    if (pg !== undefined) await pg.daemon.stop();
    const started = await startOn(ctx, `${name}-serve-${i}`, root);
    pg = started.pg;
    point.startupS.push(started.seconds);
    const pid = pg.daemon.child.pid;
    if (pid !== undefined) point.idleKiB.push(await procStatusKiB(pid, 'VmRSS'));
  }
  if (pg === undefined) throw new Error('no pullgate started');
  await expectBody(`${pg.url}${index.tagPath(0)}`, index.firstTagDigest, { accept: ACCEPT });
  return { point, pg, dir: ctx.ws.path(name) };
}

/** One wrk run of a Lua script against a point's server: its rate and the server's CPU-seconds per 10k requests; errors are counted into the point. */
async function rate(ctx: BenchContext, prepared: { point: Point; pg: Pullgate; dir: string }, file: string, lua: string): Promise<{ rate: number; cpuPer10k: number }> {
  const script = join(prepared.dir, file);
  await writeFile(script, lua);
  const pid = prepared.pg.daemon.child.pid;
  if (pid === undefined) throw new Error(`growth-${prepared.point.rows}: the server has no pid`);
  const cpu0 = await procCpuSeconds(pid);
  const r = await runWrk(`${prepared.pg.url}/v2/`, { threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`], script });
  const cpu = (await procCpuSeconds(pid)) - cpu0;
  prepared.point.rateErrors += wrkErrors(r);
  return { rate: r.reqPerSec, cpuPer10k: (cpu / Math.max(r.requests, 1)) * 10_000 };
}

/**
 * Every point's figures. The servers of all sizes run at once and their wrk runs take turns (10k, 100k, 1M,
 * 10k, ...), so a drift of the machine's speed over the minutes of the measure falls on every size alike:
 * the rates are compared across sizes, and in sequence the comparison measured the drift as much as the index.
 */
async function measurePoints(ctx: BenchContext, sizes: readonly number[]): Promise<Point[]> {
  const prepared: { point: Point; pg: Pullgate; dir: string }[] = [];
  try {
    for (const rows of sizes) {
      await ctx.phase(`growth: synthetic index of ${fmt(rows)} blob rows`, () => [], async () => {
        prepared.push(await preparePoint(ctx, rows));
      });
    }
    await ctx.phase(`growth: manifest rates, taking turns over ${prepared.length} index sizes`, () => [], async () => {
      // Rounds over every size: all tags first, then the hot set.
      for (const hot of [false, true]) {
        for (let i = 0; i < ctx.config.repeat; i += 1) {
          for (const p of prepared) {
            const r = await rate(ctx, p, hot ? 'hot-tag.lua' : 'random-tag.lua', tagScript(p.point.index, hot ? HOT_TAGS : undefined));
            (hot ? p.point.hotRates : p.point.rates).push(r.rate);
            (hot ? p.point.hotCpuPer10k : p.point.cpuPer10k).push(r.cpuPer10k);
          }
        }
      }
    });
    for (const { point, pg } of prepared) {
      const pid = pg.daemon.child.pid;
      point.afterKiB = pid === undefined ? undefined : await procStatusKiB(pid, 'VmRSS');
    }
  } finally {
    for (const { pg } of prepared) await pg.daemon.stop();
  }
  for (const { point, pg } of prepared) {
    point.stats = await cacheStats(pg.configPath);
    ctx.log(
      `growth-${point.rows}: start-up ${median(point.startupS).toFixed(2)} s, idle ${fmt(median(point.idleKiB) / 1024, 1)} MiB, ${fmt(median(point.rates))} req/s by random tag, ${fmt(median(point.hotRates))} over ${fmt(Math.min(HOT_TAGS, point.index.tags))} hot tags` +
        ` (CPU-s per 10k requests ${median(point.cpuPer10k).toFixed(3)} and ${median(point.hotCpuPer10k).toFixed(3)})` +
        `${point.rateErrors > 0 ? ` (${point.rateErrors} errors)` : ''}, cache stats ${point.stats?.seconds.toFixed(2) ?? '—'} s (${point.stats?.detail ?? ''})`,
    );
  }
  return prepared.map((p) => p.point);
}

/**
 * A growth target: `rates` (of the largest index) within 10% of `base` (of the smallest), without errors. The
 * CPU per request of both is shown beside it: the rate is the target, the CPU says how much of a miss is the index.
 */
function rateTarget(target: string, rates: number[], base: number[], errors: number, cpu: { ours: number[]; base: number[] }): Verdict {
  const cpuRatio = median(cpu.ours) / median(cpu.base);
  const measured =
    `${fmt(median(rates))} vs ${fmt(median(base))} req/s (${fmt((median(rates) / median(base)) * 100)}%); ` +
    `CPU-s per 10k requests ${median(cpu.ours).toFixed(3)} vs ${median(cpu.base).toFixed(3)} (${cpuRatio.toFixed(2)}×)`;
  return { issue: 14, target, measured, met: rates.length > 0 && base.length > 0 ? median(rates) >= 0.9 * median(base) && errors === 0 : undefined };
}

export const growthMeasure: Measure = {
  name: 'growth',
  group: 'growth',
  peers: ['pullgate'],
  standalone: true,
  async run(ctx, peers): Promise<MeasureReport> {
    const report = emptyReport();
    if (peers.length === 0) return report;
    const points = await measurePoints(ctx, ctx.config.sizes.growthRows);
    if (points.length === 0) return report;
    report.tables.push({
      title: 'Growth curve (synthetic index)',
      table: {
        header: [
          'Blob rows',
          'Tags',
          'index.db',
          'Start-up to /readyz, s',
          'Idle RSS, MiB',
          'Manifest by random tag, req/s',
          `Manifest by tag of ${fmt(HOT_TAGS)} hot ones, req/s`,
          'CPU-s per 10k requests, random / hot',
          'RSS after, MiB',
          '`cache stats`, s',
        ],
        rows: points.map((p) => [
          fmt(p.rows),
          fmt(p.index.tags),
          `${fmt(p.index.indexBytes / 2 ** 20, 1)} MiB`,
          samplesText(p.startupS, 2),
          samplesText(p.idleKiB.map((kib) => kib / 1024), 1),
          samplesText(p.rates, 0) + (p.rateErrors > 0 ? ` (${p.rateErrors} errors!)` : ''),
          samplesText(p.hotRates, 0),
          `${samplesText(p.cpuPer10k, 3)} / ${samplesText(p.hotCpuPer10k, 3)}`,
          p.afterKiB === undefined ? '—' : fmt(p.afterKiB / 1024, 1),
          p.stats === undefined ? '—' : p.stats.ok ? p.stats.seconds.toFixed(2) : `FAILED after ${p.stats.seconds.toFixed(1)} s (${p.stats.detail})`,
        ]),
      },
    });
    const series = (name: string, pick: (p: Point) => number): { name: string; points: { x: number; y: number }[] } => ({
      name,
      points: points.map((p) => ({ x: p.rows, y: pick(p) })),
    });
    report.charts.push(
      { title: 'Start-up to /readyz (s) by index size', xLabel: 'blob rows', yLabel: 's', kind: 'line', logX: true, series: [series('start-up', (p) => median(p.startupS))] },
      { title: 'Manifest hits by random tag (req/s) by index size', xLabel: 'blob rows', yLabel: 'req/s', kind: 'line', logX: true, series: [series('random tag', (p) => median(p.rates)), series(`${fmt(HOT_TAGS)} hot tags`, (p) => median(p.hotRates))] },
      {
        title: 'RSS (MiB) by index size',
        xLabel: 'blob rows',
        yLabel: 'MiB',
        kind: 'line',
        logX: true,
        series: [series('idle', (p) => median(p.idleKiB) / 1024), series('after the tag run', (p) => (p.afterKiB ?? Number.NaN) / 1024)],
      },
    );
    report.notes.push(
      `Growth: synthetic indexes written straight into index.db by bench/lib/synthetic-index.ts (N blob rows of 1–10 kB, N/5 tags over N/500 repositories, a link per row, ` +
        `about one manifest per ten tags with its bytes on disk; validated_at now, tagTTL 24h, so every tag request is a hit). Start-up: spawn of \`pullgate serve\` until /readyz answers 200 ` +
        `(polled every 10 ms), ${ctx.config.repeat} starts; manifest rate: wrk -t2 -c32, ${ctx.config.repeat} × ${ctx.config.wrkSeconds} s, each request a random tag of the index, then as many runs over its first ${fmt(HOT_TAGS)} tags, ` +
        `the servers of every size running at once and their runs taking turns, so that the machine's drift falls on every size alike ` +
        `(as many distinct tags as the 10k-row index has; the tag memo holds 100,000 tags, so uniform requests over 200,000 ask SQLite and disk for half of them); ` +
        '`cache stats`: wall time of the CLI process (node start included) after the server stopped.',
    );
    const first = points[0];
    const last = points[points.length - 1];
    if (first !== undefined && last !== undefined && points.length > 1) {
      const lastLabel = `${fmt(last.rows)} rows`;
      const startup = median(last.startupS);
      report.targets.push(
        { issue: 14, target: `Start-up ≤ 3 s at ${lastLabel}`, measured: `${startup.toFixed(2)} s`, met: Number.isFinite(startup) ? startup <= 3 : undefined },
        rateTarget(`Manifest-by-tag rate at ${lastLabel} within 10% of ${fmt(first.rows)} rows, each over all its tags`, last.rates, first.rates, last.rateErrors, {
          ours: last.cpuPer10k,
          base: first.cpuPer10k,
        }),
        rateTarget(`Manifest-by-tag rate at ${lastLabel} within 10% of ${fmt(first.rows)} rows, both over ${fmt(HOT_TAGS)} tags`, last.hotRates, first.hotRates, last.rateErrors, {
          ours: last.hotCpuPer10k,
          base: first.hotCpuPer10k,
        }),
        {
          issue: 14,
          target: `\`cache stats\` ≤ 1 s at ${lastLabel}`,
          measured: last.stats === undefined ? '—' : last.stats.ok ? `${last.stats.seconds.toFixed(2)} s` : `failed after ${last.stats.seconds.toFixed(1)} s: ${last.stats.detail}`,
          met: last.stats === undefined ? undefined : last.stats.ok && last.stats.seconds <= 1,
        },
      );
    }
    return report;
  },
};
