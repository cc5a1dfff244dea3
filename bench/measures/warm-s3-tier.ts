// Warm blob from the S3 tier vs the local tier (issue 11): one pullgate fills the 200 MiB blob (into its local disk
// and the RGW bucket); then, per run, a fresh pullgate over the same bucket with an empty local disk answers one GET
// from S3 (keeping a local copy) and a second GET from its local tier. Single-client MB/s of each and their ratio.
import { type Replica, startReplicas } from '../../support/cluster-replicas.js';
import { blobGetsText, countBlobGets } from '../lib/blob-gets.js';
import { benchRgw, benchUpstream, waitForObject } from '../lib/cluster.js';
import { MiB } from '../lib/constants.js';
import { expectBody } from '../lib/probes.js';
import { fmt, ratio } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import { median } from '../lib/stats.js';
import { registryPath } from '../peers/registry-paths.js';
import type { Measure } from './types.js';

const PREFIX = 'warm-tier/';

export const warmS3Tier: Measure = {
  name: 'warm-s3-tier',
  group: 'cluster',
  peers: ['pullgate'],
  async run(ctx): Promise<MeasureReport> {
    const report = emptyReport();
    const served = registryPath(ctx, 'bigBlob');
    const size = ctx.images.big.blobs.get(served.digest)?.length ?? 0;
    const shared = await benchRgw(ctx, 'warm-s3-tier');
    if (!('rgw' in shared)) throw new Error(`needs Ceph RGW for the S3 tier, which did not start: ${shared.reason}`);
    const { rgw } = shared;
    const upstream = benchUpstream(ctx);
    const s3Rates: number[] = [];
    const localRates: number[] = [];
    const upstreamGets: string[] = [];
    let current: Replica[] = [];
    const daemons = (): Replica['daemon'][] => current.map((r) => r.daemon);
    await ctx.phase(`warm-s3-tier: fill the ${fmt(size / MiB, 1)} MiB blob into the local tier and the bucket`, daemons, async () => {
      current = await startReplicas(ctx.ws, upstream, { count: 1, rgw, prefix: PREFIX, name: 'tier-seed' });
      const [seed] = current;
      if (seed === undefined) throw new Error('no replica');
      await expectBody(`${seed.url}${served.path}`, served.digest);
      await waitForObject(rgw, PREFIX, served.digest);
      await seed.daemon.stop();
    });
    for (let i = 0; i < ctx.config.repeat; i++) {
      await ctx.phase(`warm-s3-tier: run ${i + 1}/${ctx.config.repeat}, a fresh replica (empty local disk) reads from S3, then from its local tier`, daemons, async () => {
        current = await startReplicas(ctx.ws, upstream, { count: 1, rgw, prefix: PREFIX, name: `tier-read-${i}` });
        const [replica] = current;
        if (replica === undefined) throw new Error('no replica');
        const mark = await ctx.markUpstream();
        const fromS3 = await expectBody(`${replica.url}${served.path}`, served.digest);
        const fromLocal = await expectBody(`${replica.url}${served.path}`, served.digest);
        const gets = await countBlobGets(mark.log, served.digest);
        upstreamGets.push(blobGetsText(gets));
        if (gets.served + gets.challenged + gets.other > 0) throw new Error(`a replica over the bucket asked upstream for the blob: ${blobGetsText(gets)}`);
        s3Rates.push(size / MiB / (fromS3.ms / 1000));
        localRates.push(size / MiB / (fromLocal.ms / 1000));
        ctx.log(`warm-s3-tier: S3 tier ${fmt(s3Rates.at(-1) ?? 0)} MB/s, local tier ${fmt(localRates.at(-1) ?? 0)} MB/s`);
        await replica.daemon.stop();
      });
    }
    const label = `${fmt(size / MiB, 1)} MiB blob, one client`;
    report.figures.push(
      { label: `Warm ${label}, from the S3 tier (Ceph RGW, empty local disk), MB/s`, noRatio: true, cells: { pullgate: { samples: s3Rates } } },
      { label: `Warm ${label}, from the local tier (same replica, next GET), MB/s`, noRatio: true, cells: { pullgate: { samples: localRates } } },
      {
        label: `Warm ${label}: S3 tier / local tier`,
        noRatio: true,
        cells: { pullgate: { text: s3Rates.length === 0 || localRates.length === 0 ? 'n/a' : ratio(median(s3Rates), median(localRates)) } },
      },
    );
    report.notes.push(
      `Warm blob from the S3 tier vs the local tier: ${s3Rates.length} fresh replicas over the RGW bucket ${PREFIX}; each read the blob from S3 ` +
        `(median ${fmt(median(s3Rates))} MB/s), kept a local copy and served the next GET from it (median ${fmt(median(localRates))} MB/s). ` +
        `Upstream blob GETs during those reads: ${upstreamGets.join(', ') || '—'}.`,
    );
    return report;
  },
};
