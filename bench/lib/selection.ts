// BENCH_ONLY: which measures run, against which peers. Each name is a measure (warm-blob, cold-pull-250m-40ms …),
// a group of measures (warm, cold, wan, fanout, rss, growth, cluster) or a peer (PEER_NAMES: pullgate, pullgate-1w, nginx …).
import type { Measure } from '../measures/types.js';
import { PEER_NAMES, type PeerName } from '../peers/types.js';

export interface Selection {
  measures: Measure[];
  peers: ReadonlySet<PeerName>;
}

const isPeer = (name: string): name is PeerName => (PEER_NAMES as readonly string[]).includes(name);

/** The measures and peers `only` names (all of either kind when it names none); throws on an unknown name. */
export function selectMeasures(only: readonly string[] | undefined, table: readonly Measure[]): Selection {
  if (only === undefined) return { measures: [...table], peers: new Set(PEER_NAMES) };
  const known = new Set([...table.map((m) => m.name), ...table.map((m) => m.group), ...PEER_NAMES]);
  const unknown = only.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  const peerNames = only.filter(isPeer);
  const measureNames = only.filter((n) => !isPeer(n));
  return {
    measures: measureNames.length === 0 ? [...table] : table.filter((m) => measureNames.includes(m.name) || measureNames.includes(m.group)),
    peers: new Set(peerNames.length === 0 ? PEER_NAMES : peerNames),
  };
}
