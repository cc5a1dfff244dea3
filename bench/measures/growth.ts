// Cost as the index grows (issue 14 §4): for each synthetic index size, pullgate's start-up time to /readyz, its
// idle RSS, its rate of manifest hits by tag (wrk with a Lua script) over a hot set that is the same at every size
// and then over all the index's tags, its RSS after them, and the wall time of `pullgate cache stats`; and, on the
// largest index, the CPU floor of a tag's first lookup (bench/lib/first-lookup-floor.ts).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../support/proc.js';
import { PULLGATE_CLI, type Pullgate, startFlags, startPullgate } from '../../support/pullgate.js';
import { ACCEPT } from '../lib/constants.js';
import type { BenchContext } from '../lib/context.js';
import { expectBody, procStatusKiB } from '../lib/probes.js';
import { treeCpuSeconds } from '../lib/proc-tree.js';
import { samplesText } from '../lib/render.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, type Verdict, emptyReport } from '../lib/results.js';
import { median } from '../lib/stats.js';
import { type SyntheticIndex, generateSyntheticIndex } from '../lib/synthetic-index.js';
import { type LookupFloor, measureLookupFloor } from '../lib/first-lookup-floor.js';
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
  /** The same rate over the hot set (what a fleet asks for all day), the same tags whatever the index size. */
  hotRates: number[];
  /**
   * CPU-seconds of the server per 10,000 requests in each of those runs: the cost of a request, which a busy
   * machine shifts less than the rate (the rate also depends on how much of the cores wrk and the rest get).
   */
  cpuPer10k: number[];
  hotCpuPer10k: number[];
  /** Requests of all the runs over all tags (how many of them were a tag's first follows from it). */
  randomRequests: number;
  /** The floor of a first lookup, measured on the largest index after its server stopped. */
  floor: LookupFloor | undefined;
  rateErrors: number;
  afterKiB: number | undefined;
  stats: { seconds: number; ok: boolean; detail: string } | undefined;
}

/**
 * The hot set: HOT_REPOS repositories × HOT_TAGS_PER_REPO tags, which the generator points at 10 manifests per
 * repository, at every index size. It is the whole of the 10k-row index (20 repositories, 2,000 tags, 200
 * manifests), so at 1M rows the hot-set runs ask for the very same working set and differ from 10k's only by
 * the index around it. (The first 2,000 tags, the hot set before, span 2,000 repositories and 2,000 manifests
 * at 1M rows: ten and a hundred times 10k's, so their rate measured the larger working set too.)
 */
const HOT_REPOS = 20;
const HOT_TAGS_PER_REPO = 100;

/** The hot set of an index: repositories, tags and the manifests they point at. */
export function hotSet(index: Pick<SyntheticIndex, 'tags' | 'repositories' | 'manifests'>): { repositories: number; tags: number; manifests: number } {
  const repositories = Math.min(HOT_REPOS, index.repositories);
  const perRepo = Math.min(HOT_TAGS_PER_REPO, Math.floor(index.tags / index.repositories));
  const perRepoManifests = Math.max(1, Math.floor(index.manifests / index.repositories));
  return { repositories, tags: repositories * perRepo, manifests: repositories * Math.min(perRepo, perRepoManifests) };
}

function hotLabel(index: SyntheticIndex): string {
  const hot = hotSet(index);
  return `${fmt(hot.tags)} hot tags (${fmt(hot.repositories)} repositories, ${fmt(hot.manifests)} manifests)`;
}

/** wrk's Lua script: each request asks for a random one of the index's tags. */
export function tagScript(index: SyntheticIndex): string {
  return [
    `local tags, repos = ${index.tags}, ${index.repositories}`,
    'math.randomseed(os.time())',
    'request = function()',
    '  local t = math.random(0, tags - 1)',
    `  return wrk.format("GET", "/v2/growth/r" .. (t % repos) .. "/manifests/t" .. t)`,
    'end',
    '',
  ].join('\n');
}

/** wrk's Lua script: each request asks for a random tag of the hot set (tag r + R·k is in repository r of R). */
export function hotTagScript(index: SyntheticIndex): string {
  const hot = hotSet(index);
  return [
    `local hotRepos, perRepo, repos = ${hot.repositories}, ${hot.tags / hot.repositories}, ${index.repositories}`,
    'math.randomseed(os.time())',
    'request = function()',
    '  local t = math.random(0, hotRepos - 1) + repos * math.random(0, perRepo - 1)',
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
  const point: Point = { rows, index, startupS: [], idleKiB: [], rates: [], hotRates: [], cpuPer10k: [], hotCpuPer10k: [], randomRequests: 0, floor: undefined, rateErrors: 0, afterKiB: undefined, stats: undefined };
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
async function rate(ctx: BenchContext, prepared: { point: Point; pg: Pullgate; dir: string }, file: string, lua: string): Promise<{ rate: number; cpuPer10k: number; requests: number }> {
  const script = join(prepared.dir, file);
  await writeFile(script, lua);
  const pid = prepared.pg.daemon.child.pid;
  if (pid === undefined) throw new Error(`growth-${prepared.point.rows}: the server has no pid`);
  const cpu0 = (await treeCpuSeconds(pid)).seconds;
  const r = await runWrk(`${prepared.pg.url}/v2/`, { threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`], script });
  const cpu = (await treeCpuSeconds(pid)).seconds - cpu0;
  prepared.point.rateErrors += wrkErrors(r);
  return { rate: r.reqPerSec, cpuPer10k: (cpu / Math.max(r.requests, 1)) * 10_000, requests: r.requests };
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
      // An uncounted run over the hot set first: each server's first seconds compile its hot paths, which
      // would otherwise fall on the first counted run of whichever measure comes first.
      for (const p of prepared) await rate(ctx, p, 'warm-up.lua', hotTagScript(p.point.index));
      // Rounds over every size: the hot set first, while every server has been asked for nothing else (so
      // the sizes differ by their index alone), then all tags.
      for (const hot of [true, false]) {
        for (let i = 0; i < ctx.config.repeat; i += 1) {
          for (const p of prepared) {
            const r = await rate(ctx, p, hot ? 'hot-tag.lua' : 'random-tag.lua', hot ? hotTagScript(p.point.index) : tagScript(p.point.index));
            (hot ? p.point.hotRates : p.point.rates).push(r.rate);
            (hot ? p.point.hotCpuPer10k : p.point.cpuPer10k).push(r.cpuPer10k);
            if (!hot) p.point.randomRequests += r.requests;
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
    if (point === prepared[prepared.length - 1]?.point && prepared.length > 1) {
      point.floor = measureLookupFloor(point.index);
      ctx.log(`growth-${point.rows}: ${floorText(point.floor)}`);
    }
    ctx.log(
      `growth-${point.rows}: start-up ${median(point.startupS).toFixed(2)} s, idle ${fmt(median(point.idleKiB) / 1024, 1)} MiB, ${fmt(median(point.rates))} req/s by random tag, ${fmt(median(point.hotRates))} over ${hotLabel(point.index)}` +
        ` (CPU-s per 10k requests ${median(point.cpuPer10k).toFixed(3)} and ${median(point.hotCpuPer10k).toFixed(3)})` +
        `${point.rateErrors > 0 ? ` (${point.rateErrors} errors)` : ''}, cache stats ${point.stats?.seconds.toFixed(2) ?? '—'} s (${point.stats?.detail ?? ''})`,
    );
  }
  return prepared.map((p) => p.point);
}

function floorText(floor: LookupFloor): string {
  const m = floor.manifestUs;
  return (
    `first-lookup floor (CPU, alone, ${fmt(floor.lookups)} random tags): tag row ${floor.tagRowUs.toFixed(1)} µs; ` +
    `a manifest's first: row ${m.row.toFixed(1)} + file ${m.file.toFixed(1)} + access time written and checkpointed ${m.accessWrite.toFixed(1)} µs`
  );
}

/**
 * The least CPU per request that first lookups add to `point`'s runs over all its tags: the expected number of
 * distinct tags and manifests that many uniform requests ask for, each at its measured floor, over the requests.
 */
function floorPerRequestUs(point: Point, floor: LookupFloor): number {
  const n = point.randomRequests;
  const m = floor.manifestUs;
  return (distinctAsked(point.index.tags, n) * floor.tagRowUs + distinctAsked(point.index.manifests, n) * (m.row + m.file + m.accessWrite)) / Math.max(n, 1);
}

/** How many of `of` equally likely items `n` uniform draws ask for at least once (expected). */
function distinctAsked(of: number, n: number): number {
  return of * (1 - Math.exp(-n / of));
}

/**
 * The random-tag target's verdict with what first lookups cost at least: within 10% of the rate allows about
 * 11% more CPU per request than the base (1/0.9), and the floor alone may already be more than that.
 */
function withFloor(verdict: Verdict, point: Point, base: Point): Verdict {
  if (point.floor === undefined || base.cpuPer10k.length === 0) return verdict;
  const floorUs = floorPerRequestUs(point, point.floor);
  const baseUs = median(base.cpuPer10k) * 100;
  return {
    ...verdict,
    measured: `${verdict.measured}; first lookups (${fmt(distinctAsked(point.index.tags, point.randomRequests))} of ${fmt(point.randomRequests)} requests) add at least ${floorUs.toFixed(1)} µs of CPU per request, ${fmt((floorUs / baseUs) * 100)}% of ${fmt(base.rows)} rows' ${baseUs.toFixed(1)} µs (within 10% allows about 11%)`,
  };
}

/**
 * A growth target: `rates` (of the largest index) within 10% of `base` (of the smallest), without errors. The
 * CPU per request of both is shown beside it: the rate is the target, the CPU says how much of a miss is the index.
 */
function rateTarget(target: string, rates: number[], base: number[], errors: number, cpu: { ours: number[]; base: number[] }): Verdict {
  const cpuRatio = median(cpu.ours) / median(cpu.base);
  const measured =
    `${fmt(median(rates))} vs ${fmt(median(base))} req/s (${fmt((median(rates) / median(base)) * 100, 1)}%); ` +
    `CPU-s per 10k requests ${median(cpu.ours).toFixed(3)} vs ${median(cpu.base).toFixed(3)} (${cpuRatio.toFixed(2)}×)`;
  return { issue: 14, target, measured, met: rates.length > 0 && base.length > 0 ? median(rates) >= 0.9 * median(base) && errors === 0 : undefined };
}

export const growthMeasure: Measure = {
  name: 'growth',
  group: 'growth',
  peers: ['pullgate-1w'],
  standalone: true,
  async run(ctx, peers): Promise<MeasureReport> {
    const report = emptyReport();
    if (peers.length === 0) return report;
    const points = await measurePoints(ctx, ctx.config.sizes.growthRows);
    const smallest = points[0];
    if (smallest === undefined) return report;
    const hot = hotLabel(smallest.index);
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
          `Manifest by tag of the ${hot}, req/s`,
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
      { title: 'Manifest hits by random tag (req/s) by index size', xLabel: 'blob rows', yLabel: 'req/s', kind: 'line', logX: true, series: [series('random tag', (p) => median(p.rates)), series('hot set', (p) => median(p.hotRates))] },
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
        `(polled every 10 ms), ${ctx.config.repeat} starts; manifest rate: wrk -t2 -c32, ${ctx.config.repeat} × ${ctx.config.wrkSeconds} s, first over the ${hot} at every size (the same requests, made while the servers have been asked for nothing else, after an uncounted run of them), then as many runs with each request a random tag of the index, ` +
        `the servers of every size running at once and their runs taking turns, so that the machine's drift falls on every size alike ` +
        `(over all tags, most requests of a large index are a tag's first: its row, its manifest and an access time come from or go to SQLite and disk); ` +
        '`cache stats`: wall time of the CLI process (node start included) after the server stopped.',
    );
    const first = points[0];
    const last = points[points.length - 1];
    if (last?.floor !== undefined) report.notes.push(`Growth at ${fmt(last.rows)} rows: ${floorText(last.floor)} (bench/lib/first-lookup-floor.ts).`);
    if (first !== undefined && last !== undefined && points.length > 1) {
      const lastLabel = `${fmt(last.rows)} rows`;
      const startup = median(last.startupS);
      report.targets.push(
        { issue: 14, target: `Start-up ≤ 3 s at ${lastLabel}`, measured: `${startup.toFixed(2)} s`, met: Number.isFinite(startup) ? startup <= 3 : undefined },
        withFloor(
          rateTarget(`Manifest-by-tag rate at ${lastLabel} within 10% of ${fmt(first.rows)} rows, each over all its tags`, last.rates, first.rates, last.rateErrors, {
            ours: last.cpuPer10k,
            base: first.cpuPer10k,
          }),
          last,
          first,
        ),
        rateTarget(`Manifest-by-tag rate at ${lastLabel} within 10% of ${fmt(first.rows)} rows, both over the ${hot}`, last.hotRates, first.hotRates, last.rateErrors, {
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
