// Manifests by tag within the TTL, wrk -t2 -c32, counting what the upstream receives meanwhile; nginx and node:http
// answer with a 3-byte file, the least any server can send.
import { ACCEPT } from '../lib/constants.js';
import { wrkMeasure, wrkRatio } from './wrk-rate.js';

export const manifestByTag = wrkMeasure({
  name: 'manifest-tag',
  group: 'warm',
  content: 'tag',
  peers: ['pullgate', 'pullgate-1w', 'nginx', 'node', 'node-cores', 'distribution'],
  label: () => 'Manifest by tag (within TTL), req/s (nginx, node: 3-byte file)',
  wrk: (ctx) => ({ threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`] }),
  rate: (r) => r.reqPerSec,
  cpuUnit: { label: 'per 10k requests', count: (r) => r.requests / 10_000 },
  countUpstream: true,
  targets: (runs) => [
    wrkRatio(runs, { issue: 3, target: 'Manifest by tag, default workers ≥ 20× distribution', ours: 'pullgate', theirs: 'distribution', atLeast: 20, unit: 'req/s' }),
    wrkRatio(runs, { issue: 3, target: 'Manifest by tag, --workers 1 ≥ 0.4× nginx small file', ours: 'pullgate-1w', theirs: 'nginx', atLeast: 0.4, unit: 'req/s' }),
    wrkRatio(runs, { issue: 14, target: 'Manifest by tag, default workers (one per core) ≥ 0.7× nginx small file', ours: 'pullgate', theirs: 'nginx', atLeast: 0.7, unit: 'req/s' }),
    // Not pullgate's target but its ceiling: what bare node:http, a process per core, reaches against nginx on this machine.
    wrkRatio(runs, { issue: 14, target: '(ceiling) node:http alone, a process per core ≥ 0.7× nginx small file', ours: 'node-cores', theirs: 'nginx', atLeast: 0.7, unit: 'req/s' }),
  ],
});
