// Fan-out: CLIENTS concurrent cold clients of one blob through a fresh mirror, and how many GETs of it reach the
// upstream (pullgate's target: one).
import { MiB } from '../lib/constants.js';
import { biggestLayer } from '../lib/context.js';
import { type BlobGets, blobGetsText, countBlobGets } from '../lib/blob-gets.js';
import { type FanOut, fanOut } from '../lib/probes.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import type { PeerName, RunningPeer } from '../peers/types.js';
import type { Measure } from './types.js';

export const fanOutMeasure: Measure = {
  name: 'fan-out',
  group: 'fanout',
  peers: ['pullgate', 'distribution'],
  async run(ctx, peers): Promise<MeasureReport> {
    const report = emptyReport();
    const n = ctx.config.clients;
    const layer = biggestLayer(ctx.images.small);
    const results = new Map<PeerName, { gets: BlobGets; run: FanOut }>();
    for (const peer of peers) {
      let running: RunningPeer | undefined;
      await ctx.phase(`fan-out: ${n} concurrent cold clients of the ${fmt(layer.size / MiB, 1)} MiB blob through ${peer.label}`, () => [running?.daemon], async () => {
        const served = peer.serves(ctx, 'blob');
        if (served === undefined) throw new Error(`${peer.label} does not serve blobs`);
        running = await peer.start(ctx, `${peer.name}-fanout`, ctx.direct);
        const mark = await ctx.markUpstream();
        const run = await fanOut(`${running.url}${served.path}`, n, layer.digest);
        const gets = await countBlobGets(mark.log, layer.digest);
        results.set(peer.name, { gets, run });
        ctx.log(`${peer.label}: upstream GETs ${blobGetsText(gets)}, ${n - run.failures.length}/${n} clients correct, ${fmt(run.ms)} ms`);
        await running.stop();
      });
    }
    report.figures.push({
      label: `Upstream blob GETs, ${n} concurrent cold clients, ${fmt(layer.size / MiB, 1)} MiB blob`,
      noRatio: true,
      cells: Object.fromEntries([...results].map(([p, r]) => [p, { text: blobGetsText(r.gets), samples: [r.gets.served] }])),
    });
    for (const peer of peers) {
      const r = results.get(peer.name);
      if (r === undefined) continue;
      report.notes.push(
        `Fan-out through ${peer.label} (fresh instance): upstream blob GETs ${blobGetsText(r.gets)}; ${n - r.run.failures.length}/${n} clients got the whole blob; last client done after ${fmt(r.run.ms)} ms.` +
          (r.run.failures.length > 0 ? ` Failures: ${r.run.failures.join('; ')}` : ''),
      );
    }
    const pg = results.get('pullgate');
    report.targets.push({
      issue: 3,
      target: `1 upstream GET for ${n} cold clients`,
      measured: pg === undefined ? '—' : `${blobGetsText(pg.gets)}; ${n - pg.run.failures.length}/${n} clients got the whole blob`,
      met: pg === undefined ? undefined : pg.gets.served === 1 && pg.gets.other === 0 && pg.run.failures.length === 0,
    });
    return report;
  },
};
