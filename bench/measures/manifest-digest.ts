// Manifests by digest, wrk -t2 -c32; nginx and node:http serve the same manifest bytes as a file.
import { ACCEPT } from '../lib/constants.js';
import { wrkMeasure } from './wrk-rate.js';

export const manifestByDigest = wrkMeasure({
  name: 'manifest-digest',
  group: 'warm',
  content: 'digest',
  peers: ['pullgate', 'pullgate-1w', 'nginx', 'node', 'distribution'],
  label: () => 'Manifest by digest, req/s (nginx, node: manifest file)',
  wrk: (ctx) => ({ threads: 2, connections: 32, durationS: ctx.config.wrkSeconds, headers: [`Accept: ${ACCEPT}`] }),
  rate: (r) => r.reqPerSec,
  cpuUnit: { label: 'per 10k requests', count: (r) => r.requests / 10_000 },
  targets: () => [],
});
