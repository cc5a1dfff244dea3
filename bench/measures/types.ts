// What a bench measure is: one entry of the measure table, run against the peers it applies to.
import type { BenchContext } from '../lib/context.js';
import type { MeasureReport } from '../lib/results.js';
import type { Peer, PeerName } from '../peers/types.js';

/** Groups of measures, as BENCH_ONLY has always named them. */
export type MeasureGroup = 'warm' | 'cold' | 'wan' | 'fanout' | 'rss' | 'growth' | 'cluster';

export interface Measure {
  /** BENCH_ONLY key, e.g. `warm-blob`. */
  name: string;
  group: MeasureGroup;
  /** The peers it applies to, in the table's column order. */
  peers: readonly PeerName[];
  /** Needs no upstream registry nor pushed images (the run skips starting them when only such measures run). */
  standalone?: boolean;
  /** Runs against `peers` (those of `this.peers` that BENCH_ONLY kept); failures go to ctx.errors. */
  run(ctx: BenchContext, peers: readonly Peer[]): Promise<MeasureReport>;
}
