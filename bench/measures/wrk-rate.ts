// A throughput measure driven by wrk: each peer serves one kind of content, warmed once and checked against its
// digest, then BENCH_REPEAT rounds of one wrk run per peer (interleaved, so drift hits every peer alike).
import { type BenchContext, type UpstreamCounts, errorText } from '../lib/context.js';
import { MiB } from '../lib/constants.js';
import { expectBody } from '../lib/probes.js';
import { treeCpuSeconds } from '../lib/proc-tree.js';
import { fmt } from '../lib/report.js';
import { type Cell, type MeasureReport, type Verdict, emptyReport } from '../lib/results.js';
import { ratioVerdict } from '../lib/verdicts.js';
import { type WrkOptions, type WrkResult, runWrk, wrkErrors } from '../lib/wrk.js';
import type { Content, Peer, PeerName, RunningPeer } from '../peers/types.js';
import type { Measure, MeasureGroup } from './types.js';

/** One peer's runs: rate per run, CPU-seconds per unit of work per run, server CPU in % of one core. */
export interface WrkRuns {
  rates: number[];
  cpuPerUnit: number[];
  cpuPercent: number[];
  runs: WrkResult[];
  upstream: UpstreamCounts[];
}

export interface WrkMeasureSpec {
  name: string;
  group: MeasureGroup;
  content: Content;
  peers: readonly PeerName[];
  /** Row label, e.g. "Warm 20.0 MiB blob, MB/s". */
  label(ctx: BenchContext): string;
  wrk(ctx: BenchContext): WrkOptions;
  /** The figure of one run (MB/s or req/s). */
  rate(r: WrkResult): number;
  /** Unit of work for the CPU row, and how many of them a run did. */
  cpuUnit: { label: string; count(r: WrkResult): number };
  /** Counts the upstream's requests during each mirror's runs (manifests by tag: the TTL must hold). */
  countUpstream?: boolean;
  /** The issue targets this figure answers. */
  targets(runs: ReadonlyMap<PeerName, WrkRuns>): Verdict[];
}

/** A target comparing one peer's wrk rates with another's; met only when the first peer's runs had no errors. */
export function wrkRatio(
  runs: ReadonlyMap<PeerName, WrkRuns>,
  t: { issue: number; target: string; ours: PeerName; theirs: PeerName; atLeast: number; unit: string },
): Verdict {
  const mine = runs.get(t.ours);
  return ratioVerdict({
    issue: t.issue,
    target: t.target,
    ours: mine?.rates,
    theirs: runs.get(t.theirs)?.rates,
    atLeast: t.atLeast,
    unit: t.unit,
    clean: mine?.runs.every((w) => wrkErrors(w) === 0),
  });
}

function isRegistryPeer(p: Peer): boolean {
  return p.kind !== 'files';
}

/** Rounds of wrk against every peer; the per-run results by peer. */
async function measureRuns(ctx: BenchContext, spec: WrkMeasureSpec, peers: readonly Peer[]): Promise<Map<PeerName, WrkRuns>> {
  const out = new Map<PeerName, WrkRuns>();
  const ready: { peer: Peer; running: RunningPeer }[] = [];
  for (const peer of peers) {
    await ctx.phase(`${spec.name}: start and warm ${peer.label}`, () => [], async () => {
      const served = peer.serves(ctx, spec.content);
      if (served === undefined) throw new Error(`${peer.label} does not serve ${spec.content}`);
      const running = await ctx.shared(peer);
      // One GET fills a mirror's cache; a second one checks that the cached copy is served whole.
      await expectBody(`${running.url}${served.path}`, served.digest, served.headers);
      if (peer.kind === 'mirror') await expectBody(`${running.url}${served.path}`, served.digest, served.headers);
      ready.push({ peer, running });
      out.set(peer.name, { rates: [], cpuPerUnit: [], cpuPercent: [], runs: [], upstream: [] });
    });
  }
  const opts = spec.wrk(ctx);
  for (let round = 0; round < ctx.config.repeat; round += 1) {
    for (const { peer, running } of ready) {
      const served = peer.serves(ctx, spec.content);
      const runs = out.get(peer.name);
      if (served === undefined || runs === undefined) continue;
      await ctx.phase(`${spec.name}: ${peer.label}, run ${round + 1}/${ctx.config.repeat}`, () => [running.daemon], async () => {
        // The server's whole process tree (a primary and its workers), read while the workers live.
        const pid = running.daemon?.child.pid;
        const cpu0 = pid === undefined ? undefined : await treeCpuSeconds(pid);
        const mark = spec.countUpstream === true && isRegistryPeer(peer) ? await ctx.markUpstream() : undefined;
        const r = await runWrk(`${running.url}${served.path}`, opts);
        const cpu1 = pid === undefined ? undefined : await treeCpuSeconds(pid);
        const cpu = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1.seconds - cpu0.seconds;
        runs.runs.push(r);
        runs.rates.push(spec.rate(r));
        if (cpu !== undefined) {
          runs.cpuPercent.push((cpu / r.seconds) * 100);
          runs.cpuPerUnit.push(cpu / Math.max(spec.cpuUnit.count(r), Number.MIN_VALUE));
        }
        if (mark !== undefined) runs.upstream.push(await ctx.upstreamCounts(mark));
        const errors = wrkErrors(r);
        ctx.log(
          `${spec.name} ${peer.label}: ${fmt(spec.rate(r), 1)}` +
            (cpu === undefined ? '' : `, server CPU ${fmt((cpu / r.seconds) * 100)}% of one core over ${cpu1?.processes ?? '?'} process(es)`) +
            (errors > 0 ? `, ${errors} errors (non-2xx ${r.non2xx}, socket ${JSON.stringify(r.socketErrors)})` : ''),
        );
      });
    }
  }
  return out;
}

function wrkNote(spec: WrkMeasureSpec, peer: Peer, runs: WrkRuns, what: string): string {
  const each = runs.runs.map((w, i) => {
    const s = w.socketErrors;
    const cpu = runs.cpuPercent[i];
    return (
      `${fmt(w.requests)} requests in ${w.seconds.toFixed(2)} s, ${fmt(w.reqPerSec, 1)} req/s, ${fmt(w.bytesPerSec / MiB, 1)} MB/s` +
      (wrkErrors(w) > 0 ? `, non-2xx ${w.non2xx}, socket errors connect ${s.connect} / read ${s.read} / write ${s.write} / timeout ${s.timeout}` : '') +
      (cpu === undefined ? '' : `, server CPU ${fmt(cpu)}% of one core`)
    );
  });
  return `${spec.name} ${peer.label}${what}: ${each.join('; ')}.`;
}

const perRequest = (n: number, requests: number): string => `${fmt(n)} (${fmt(requests === 0 ? Number.NaN : n / requests, 2)} per request)`;

/** A measure of the table built from a wrk spec. */
export function wrkMeasure(spec: WrkMeasureSpec): Measure {
  return {
    name: spec.name,
    group: spec.group,
    peers: spec.peers,
    async run(ctx, peers): Promise<MeasureReport> {
      const report = emptyReport();
      let runs: Map<PeerName, WrkRuns>;
      try {
        runs = await measureRuns(ctx, spec, peers);
      } catch (err) {
        ctx.errors.push(`${spec.name}: ${errorText(err)}`);
        return report;
      }
      const cells: Partial<Record<PeerName, Cell>> = {};
      const cpu: Partial<Record<PeerName, readonly number[]>> = {};
      for (const peer of peers) {
        const r = runs.get(peer.name);
        if (r === undefined || r.rates.length === 0) continue;
        cells[peer.name] = { samples: r.rates, failed: r.runs.some((w) => wrkErrors(w) > 0) };
        if (r.cpuPerUnit.length > 0) cpu[peer.name] = r.cpuPerUnit;
        const standIn = peer.serves(ctx, spec.content)?.standIn;
        report.notes.push(wrkNote(spec, peer, r, standIn === undefined ? '' : ` (${standIn})`));
      }
      report.figures.push({ label: spec.label(ctx), cells });
      report.cpu.push({ label: `${spec.label(ctx).split(',')[0] ?? spec.name}: CPU-seconds ${spec.cpuUnit.label}`, cells: cpu });
      if (spec.countUpstream === true) {
        const sum = (name: PeerName, pick: (c: UpstreamCounts) => number): Cell | undefined => {
          const r = runs.get(name);
          if (r === undefined || r.upstream.length === 0) return undefined;
          const requests = r.runs.reduce((n, w) => n + w.requests, 0);
          return { text: perRequest(r.upstream.reduce((n, c) => n + pick(c), 0), requests) };
        };
        for (const [label, pick] of [
          ['Upstream manifest requests during the tag runs', (c: UpstreamCounts) => c.manifests],
          ['Upstream token requests during the tag runs', (c: UpstreamCounts) => c.tokens],
        ] as const) {
          const row: Partial<Record<PeerName, Cell>> = {};
          for (const peer of peers) {
            const c = sum(peer.name, pick);
            if (c !== undefined) row[peer.name] = c;
          }
          report.figures.push({ label, cells: row, noRatio: true });
        }
        for (const peer of peers) {
          const r = runs.get(peer.name);
          if (r === undefined || r.upstream.length === 0) continue;
          const t = (pick: (c: UpstreamCounts) => number): number => r.upstream.reduce((n, c) => n + pick(c), 0);
          report.notes.push(
            `Upstream requests during the ${peer.label} tag runs: ${t((c) => c.total)} in all (manifests ${t((c) => c.manifests)}, /v2/ pings ${t((c) => c.pings)}, ` +
              `blob GETs ${t((c) => c.blobGets)}, blob HEADs ${t((c) => c.blobHeads)}, other ${t((c) => c.other)}); token requests ${t((c) => c.tokens)}.`,
          );
        }
      }
      report.targets.push(...spec.targets(runs));
      return report;
    },
  };
}
