// Warm blob throughput: the 20 MiB layer from a filled cache (mirrors) or a file (nginx, node:http), wrk -t2 -c4.
import { MiB } from '../lib/constants.js';
import { biggestLayer } from '../lib/context.js';
import { fmt } from '../lib/report.js';
import { ratioVerdict } from '../lib/verdicts.js';
import { wrkErrors } from '../lib/wrk.js';
import { wrkMeasure } from './wrk-rate.js';

export const warmBlob = wrkMeasure({
  name: 'warm-blob',
  group: 'warm',
  content: 'blob',
  peers: ['pullgate', 'pullgate-2w', 'nginx', 'node', 'distribution'],
  label: (ctx) => `Warm ${fmt(biggestLayer(ctx.images.small).size / MiB, 1)} MiB blob, MB/s`,
  // wrk's default 2 s timeout is too short for a 200 MB body on a loaded machine.
  wrk: (ctx) => ({ threads: 2, connections: 4, durationS: ctx.config.wrkSeconds, timeoutS: 30 }),
  rate: (r) => r.bytesPerSec / MiB,
  cpuUnit: { label: 'per GiB served', count: (r) => (r.bytesPerSec * r.seconds) / 2 ** 30 },
  targets: (runs) => [
    ratioVerdict({
      issue: 3,
      target: 'Warm blob ≥ 0.9× nginx',
      ours: runs.get('pullgate')?.rates,
      theirs: runs.get('nginx')?.rates,
      atLeast: 0.9,
      unit: 'MB/s',
      clean: runs.get('pullgate')?.runs.every((w) => wrkErrors(w) === 0),
    }),
    ratioVerdict({
      issue: 14,
      target: 'Warm blob, 2 workers ≥ 1.0× nginx',
      ours: runs.get('pullgate-2w')?.rates,
      theirs: runs.get('nginx')?.rates,
      atLeast: 1.0,
      unit: 'MB/s',
      clean: runs.get('pullgate-2w')?.runs.every((w) => wrkErrors(w) === 0),
    }),
  ],
});
