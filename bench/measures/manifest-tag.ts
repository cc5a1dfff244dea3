// Manifests by tag within the TTL, wrk -t2 -c32, counting what the upstream receives meanwhile; nginx and node:http
// answer with a 3-byte file, the least any server can send.
import { ACCEPT } from '../lib/constants.js';
import { wrkMeasure, wrkRatio } from './wrk-rate.js';

export const manifestByTag = wrkMeasure({
  name: 'manifest-tag',
  group: 'warm',
  content: 'tag',
  peers: ['pullgate', 'pullgate-2w', 'nginx', 'node', 'node-2w', 'distribution'],
  label: () => 'Manifest by tag (within TTL), req/s (nginx, node: 3-byte file)',
  wrk: (ctx) => ({ threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`] }),
  rate: (r) => r.reqPerSec,
  cpuUnit: { label: 'per 10k requests', count: (r) => r.requests / 10_000 },
  countUpstream: true,
  targets: (runs) => [
    wrkRatio(runs, { issue: 3, target: 'Manifest by tag ≥ 20× distribution', ours: 'pullgate', theirs: 'distribution', atLeast: 20, unit: 'req/s' }),
    wrkRatio(runs, { issue: 3, target: 'Manifest by tag ≥ 0.4× nginx small file', ours: 'pullgate', theirs: 'nginx', atLeast: 0.4, unit: 'req/s' }),
    wrkRatio(runs, { issue: 14, target: 'Manifest by tag, 2 workers ≥ 0.7× nginx small file', ours: 'pullgate-2w', theirs: 'nginx', atLeast: 0.7, unit: 'req/s' }),
    // Not pullgate's target but its ceiling: what two bare node:http processes reach against nginx on this machine.
    wrkRatio(runs, { issue: 14, target: '(ceiling) node:http alone ×2 processes ≥ 0.7× nginx small file', ours: 'node-2w', theirs: 'nginx', atLeast: 0.7, unit: 'req/s' }),
  ],
});
