// Warm blob throughput: the 20 MiB layer from a filled cache (mirrors) or a file (nginx, node:http), wrk -t2 -c4.
import { MiB } from '../lib/constants.js';
import { biggestLayer } from '../lib/context.js';
import { fmt } from '../lib/report.js';
import { wrkMeasure, wrkRatio } from './wrk-rate.js';

export const warmBlob = wrkMeasure({
  name: 'warm-blob',
  group: 'warm',
  content: 'blob',
  peers: ['pullgate', 'pullgate-1w', 'nginx', 'node', 'node-cores', 'distribution'],
  label: (ctx) => `Warm ${fmt(biggestLayer(ctx.images.small).size / MiB, 1)} MiB blob, MB/s`,
  // wrk's default 2 s timeout is too short for a 200 MB body on a loaded machine.
  wrk: (ctx) => ({ threads: 2, connections: 4, durationS: ctx.config.wrkSeconds, timeoutS: 30 }),
  rate: (r) => r.bytesPerSec / MiB,
  cpuUnit: { label: 'per GiB served', count: (r) => (r.bytesPerSec * r.seconds) / 2 ** 30 },
  targets: (runs) => [
    wrkRatio(runs, { issue: 3, target: 'Warm blob, --workers 1 ≥ 0.9× nginx', ours: 'pullgate-1w', theirs: 'nginx', atLeast: 0.9, unit: 'MB/s' }),
    wrkRatio(runs, { issue: 14, target: 'Warm blob, default workers (one per core) ≥ 1.0× nginx', ours: 'pullgate', theirs: 'nginx', atLeast: 1.0, unit: 'MB/s' }),
    // Not pullgate's target but its ceiling: what bare node:http, a process per core, reaches against nginx on this machine.
    wrkRatio(runs, { issue: 14, target: '(ceiling) node:http alone, a process per core ≥ 1.0× nginx', ours: 'node-cores', theirs: 'nginx', atLeast: 1.0, unit: 'MB/s' }),
  ],
});
