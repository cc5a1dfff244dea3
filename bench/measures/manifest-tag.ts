// Manifests by tag within the TTL, wrk -t2 -c32, counting what the upstream receives meanwhile; nginx and node:http
// answer with a 3-byte file, the least any server can send.
import { ACCEPT } from '../lib/constants.js';
import { ratioVerdict } from '../lib/verdicts.js';
import { wrkErrors } from '../lib/wrk.js';
import { wrkMeasure } from './wrk-rate.js';

export const manifestByTag = wrkMeasure({
  name: 'manifest-tag',
  group: 'warm',
  content: 'tag',
  peers: ['pullgate', 'pullgate-2w', 'nginx', 'node', 'distribution'],
  label: () => 'Manifest by tag (within TTL), req/s (nginx, node: 3-byte file)',
  wrk: (ctx) => ({ threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`] }),
  rate: (r) => r.reqPerSec,
  cpuUnit: { label: 'per 10k requests', count: (r) => r.requests / 10_000 },
  countUpstream: true,
  targets: (runs) => {
    const clean = runs.get('pullgate')?.runs.every((w) => wrkErrors(w) === 0);
    const ours = runs.get('pullgate')?.rates;
    return [
      ratioVerdict({ issue: 3, target: 'Manifest by tag ≥ 20× distribution', ours, theirs: runs.get('distribution')?.rates, atLeast: 20, unit: 'req/s', clean }),
      ratioVerdict({ issue: 3, target: 'Manifest by tag ≥ 0.4× nginx small file', ours, theirs: runs.get('nginx')?.rates, atLeast: 0.4, unit: 'req/s', clean }),
      ratioVerdict({
        issue: 14,
        target: 'Manifest by tag, 2 workers ≥ 0.7× nginx small file',
        ours: runs.get('pullgate-2w')?.rates,
        theirs: runs.get('nginx')?.rates,
        atLeast: 0.7,
        unit: 'req/s',
        clean: runs.get('pullgate-2w')?.runs.every((w) => wrkErrors(w) === 0),
      }),
    ];
  },
});
