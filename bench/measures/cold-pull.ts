// Cold pulls of bench/multi with skopeo: direct from the upstream, and through a fresh pullgate as `npm start` runs
// it (one worker per core), a fresh `pullgate --workers 1` and a fresh distribution proxy (each warmed by a pull of
// another image first, so the timed pull meets a cold cache, not a cold process), on loopback or with the upstream
// behind a shaped link; wall time and the CPU-seconds of the mirror's whole process tree, with each pullgate's ratio
// to distribution's CPU in the same run.
import { rm } from 'node:fs/promises';
import { diffBlobs, readLayout } from '../../support/oci-compare.js';
import type { BuiltImage } from '../../support/oci-layout.js';
import { skopeoPull } from '../../support/skopeo.js';
import { MiB, PULLER, REPO, TAG } from '../lib/constants.js';
import type { BenchContext } from '../lib/context.js';
import { treeCpuSeconds } from '../lib/proc-tree.js';
import { fmt, ratio } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import { type LinkShape, startShapedLink } from '../lib/shaped-link.js';
import { median } from '../lib/stats.js';
import { ratioVerdict } from '../lib/verdicts.js';
import type { Peer, PeerName, RunningPeer, UpstreamEndpoint } from '../peers/types.js';
import type { Measure } from './types.js';

export function linkText(shape: LinkShape): string {
  return `${fmt(shape.mbitPerSecond)} Mbit/s, ${fmt(shape.rttMs)} ms RTT`;
}

/** Pulls `src` into a temp layout and checks every blob against `img`; the wall time in seconds. */
async function timedPull(ctx: BenchContext, src: string, img: BuiltImage, creds: string | undefined): Promise<number> {
  const dir = ctx.ws.path(`pull-${Math.random().toString(36).slice(2)}`);
  const started = performance.now();
  const r = await skopeoPull(src, dir, TAG, creds);
  const seconds = (performance.now() - started) / 1000;
  try {
    if (r.code !== 0) throw new Error(`skopeo copy docker://${src} exited ${r.code}: ${r.stderr.trim()}`);
    const layout = await readLayout(dir, TAG);
    const problems = diffBlobs(img, layout.blobs);
    if (layout.manifestDigest !== img.manifestDigest) problems.push(`tagged manifest ${String(layout.manifestDigest)}`);
    if (problems.length > 0) throw new Error(`skopeo copy docker://${src} wrote a different image: ${problems.join('; ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return seconds;
}

interface PullSample {
  seconds: number;
  /** CPU-seconds of the peer's process and its descendants during the timed pull (mirrors only). */
  cpu: number | undefined;
  /** How many processes that tree had at the end of the pull (a primary and its workers). */
  processes: number | undefined;
}

/** The mirrors whose CPU per pull is compared with distribution's, each against its issue's target. */
const CPU_TARGETS: readonly { peer: PeerName; issue: number; what: string }[] = [
  { peer: 'pullgate', issue: 21, what: 'default workers (one per core)' },
  { peer: 'pullgate-1w', issue: 14, what: '--workers 1' },
];

/** One cold pull through `running`: a warming pull of bench/small, then the timed pull of bench/multi. */
async function pullThrough(ctx: BenchContext, peer: Peer, running: RunningPeer): Promise<PullSample> {
  const ref = `${running.host}/${REPO.multi}:${TAG}`;
  if (peer.kind === 'upstream') return { seconds: await timedPull(ctx, ref, ctx.images.multi, running.creds), cpu: undefined, processes: undefined };
  await timedPull(ctx, `${running.host}/${REPO.small}:${TAG}`, ctx.images.small, running.creds);
  // Read before the peer stops, while its workers live (an exited worker's CPU reaches its parent only once reaped).
  const pid = running.daemon?.child.pid;
  const cpu0 = pid === undefined ? undefined : await treeCpuSeconds(pid);
  const seconds = await timedPull(ctx, ref, ctx.images.multi, running.creds);
  const cpu1 = pid === undefined ? undefined : await treeCpuSeconds(pid);
  if (cpu0 === undefined || cpu1 === undefined) return { seconds, cpu: undefined, processes: undefined };
  return { seconds, cpu: cpu1.seconds - cpu0.seconds, processes: cpu1.processes };
}

/** The cold-pull measure on loopback (`shape` undefined) or over one shaped link. */
export function coldPullMeasure(shape: LinkShape | undefined): Measure {
  const where = shape === undefined ? 'on loopback' : `over a ${linkText(shape)} link`;
  const name = shape === undefined ? 'cold-pull' : `cold-pull-${shape.mbitPerSecond}m-${shape.rttMs}ms`;
  return {
    name,
    group: shape === undefined ? 'cold' : 'wan',
    peers: ['pullgate', 'pullgate-1w', 'distribution', 'direct'],
    async run(ctx, peers): Promise<MeasureReport> {
      const report = emptyReport();
      const img = ctx.images.multi;
      const imageBytes = img.layers.reduce((n, l) => n + l.size, img.config.size);
      const seconds = new Map<PeerName, number[]>(peers.map((p) => [p.name, []]));
      const cpu = new Map<PeerName, number[]>(peers.map((p) => [p.name, []]));
      const processes = new Map<PeerName, Set<number>>(peers.map((p) => [p.name, new Set()]));
      const link = shape === undefined ? undefined : await startShapedLink(ctx.upstream.host, shape);
      const up: UpstreamEndpoint = link ?? ctx.direct;
      let current: RunningPeer | undefined;
      try {
        await ctx.phase(`${name}: ${img.layers.length} layers ${where}, skopeo copy, ${ctx.config.coldReps}× with fresh caches`, () => [current?.daemon], async () => {
          // Not counted: brings the upstream's files into the page cache and skopeo's binary into memory.
          await timedPull(ctx, `${up.host}/${REPO.multi}:${TAG}`, img, `${PULLER.username}:${PULLER.password}`);
          for (let i = 0; i < ctx.config.coldReps; i += 1) {
            const line: string[] = [];
            const round = new Map<PeerName, number>();
            for (const peer of peers) {
              current = await peer.start(ctx, `${peer.name}-${name}-${i}`, up);
              const s = await pullThrough(ctx, peer, current);
              await current.stop();
              current = undefined;
              seconds.get(peer.name)?.push(s.seconds);
              if (s.cpu !== undefined) {
                cpu.get(peer.name)?.push(s.cpu);
                round.set(peer.name, s.cpu);
              }
              if (s.processes !== undefined) processes.get(peer.name)?.add(s.processes);
              line.push(`${peer.label} ${s.seconds.toFixed(2)} s${s.cpu === undefined ? '' : ` (${s.cpu.toFixed(2)} CPU-s over ${s.processes ?? '?'} process(es))`}`);
            }
            const theirs = round.get('distribution');
            const ratios = CPU_TARGETS.flatMap((t) => {
              const ours = round.get(t.peer);
              return ours === undefined || theirs === undefined ? [] : [`${t.peer} ${ratio(ours, theirs)}`];
            });
            ctx.log(`cold pull #${i + 1} ${where}: ${line.join(', ')}${ratios.length === 0 ? '' : `; CPU / distribution's: ${ratios.join(', ')}`}`);
          }
        });
      } finally {
        await link?.close();
      }
      const label = `Cold pull ${where}, ${img.layers.length} layers / ${fmt(imageBytes / MiB, 1)} MiB, skopeo copy, s`;
      report.figures.push({
        label,
        cells: Object.fromEntries([...seconds].filter(([, xs]) => xs.length > 0).map(([p, xs]) => [p, { samples: xs, digits: 2, unit: ' s' }])),
      });
      report.cpu.push({
        label: `Cold pull ${where}: CPU-seconds of the mirror per pull (all its processes)`,
        cells: Object.fromEntries([...cpu].filter(([, xs]) => xs.length > 0)),
      });
      report.charts.push({
        title: `CPU-seconds per cold pull ${where}`,
        xLabel: 'peer',
        yLabel: 'CPU-seconds',
        kind: 'bars',
        categories: [where],
        series: [...cpu].filter(([, xs]) => xs.length > 0).map(([p, xs]) => ({ name: p, points: xs.map((y) => ({ x: 0, y })) })),
      });
      const list = (xs: readonly number[] | undefined): string => (xs ?? []).map((x) => x.toFixed(2)).join(', ');
      const tree = (p: PeerName): string => {
        const counts = [...(processes.get(p) ?? [])];
        return counts.length === 0 ? '' : ` (${counts.join(' or ')} process${counts.length === 1 && counts[0] === 1 ? '' : 'es'})`;
      };
      const theirCpu = cpu.get('distribution') ?? [];
      const ratios = CPU_TARGETS.filter((t) => peers.some((p) => p.name === t.peer) && theirCpu.length > 0).map((t) => {
        const ours = cpu.get(t.peer) ?? [];
        const each = ours.map((x, i) => ratio(x, theirCpu[i] ?? Number.NaN)).join(', ');
        return `${t.peer} ${ratio(median(ours), median(theirCpu))} (pull by pull ${each})`;
      });
      report.notes.push(
        `Cold pulls ${where} (s, each through a fresh mirror with an empty cache, warmed first by a pull of another image; after one uncounted direct pull): ` +
          peers.map((p) => `${p.label} ${list(seconds.get(p.name))}`).join('; ') +
          '. CPU-seconds of the mirror during each pull, its process and all its descendants (bench/lib/proc-tree.ts): ' +
          peers.filter((p) => p.kind === 'mirror').map((p) => `${p.label}${tree(p.name)} ${list(cpu.get(p.name))}`).join('; ') +
          '.' +
          (ratios.length === 0 ? '' : ` CPU per pull / distribution's, medians: ${ratios.join('; ')}.`),
      );
      if (shape !== undefined) {
        report.notes.push(
          'Shaped links (bench/lib/shaped-link.ts): a relay in the bench process in front of the upstream registry (not its token server) adds half the RTT in each direction ' +
            'and lets the bytes towards the clients through at the link rate, shared by all connections in arrival order; the direct pull and both mirrors use the same link.',
        );
      }
      report.targets.push(
        ratioVerdict({ issue: 3, target: `Cold pull, default workers ≤ 1.1× direct, ${where}`, ours: seconds.get('pullgate'), theirs: seconds.get('direct'), atMost: 1.1, unit: 's', digits: 2 }),
        ...CPU_TARGETS.map((t) =>
          ratioVerdict({
            issue: t.issue,
            target: `Cold-pull CPU-seconds, ${t.what}, ≤ 1.0× distribution's proxy, ${where}`,
            ours: cpu.get(t.peer),
            theirs: cpu.get('distribution'),
            atMost: 1.0,
            unit: 'CPU-s',
            digits: 2,
          }),
        ),
      );
      return report;
    },
  };
}
