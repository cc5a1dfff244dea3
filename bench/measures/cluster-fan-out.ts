// Cluster fan-out (issue 11): CLIENTS concurrent cold clients of one blob spread over three `pullgate serve` replicas
// that share one Ceph RGW bucket and route each digest to its owner; how many GETs of it reach the upstream (target:
// one for the cluster) and the wall time until the last client is done. Without Ceph the replicas run on their local
// disks only (pullgate has no shared-directory store) and the report says why.
import { type Replica, startReplicas } from '../../support/cluster-replicas.js';
import { type BlobGets, blobGetsText, countBlobGets } from '../lib/blob-gets.js';
import { benchRgw, benchUpstream, spreadFanOut } from '../lib/cluster.js';
import { MiB } from '../lib/constants.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import type { FanOut } from '../lib/probes.js';
import { registryPath } from '../peers/registry-paths.js';
import type { Measure } from './types.js';

const REPLICAS = 3;
const SECRET = 'bench-cluster-secret-0123456789abcdef';

export const clusterFanOutMeasure: Measure = {
  name: 'cluster-fan-out',
  group: 'cluster',
  peers: ['pullgate'],
  async run(ctx): Promise<MeasureReport> {
    const report = emptyReport();
    const n = ctx.config.clients;
    const served = registryPath(ctx, 'blob');
    const size = ctx.images.small.blobs.get(served.digest)?.length ?? 0;
    const shared = await benchRgw(ctx, 'cluster-fan-out');
    const store = 'rgw' in shared ? 'shared Ceph RGW bucket' : 'local disks only';
    if (!('rgw' in shared)) ctx.log(`cluster-fan-out: no Ceph RGW (${shared.reason}); the replicas run without a shared store`);
    let outcome: { gets: BlobGets; run: FanOut } | undefined;
    let replicas: Replica[] = [];
    await ctx.phase(`cluster-fan-out: ${n} cold clients of the ${fmt(size / MiB, 1)} MiB blob over ${REPLICAS} replicas (${store})`, () => replicas.map((r) => r.daemon), async () => {
      replicas = await startReplicas(ctx.ws, benchUpstream(ctx), {
        count: REPLICAS,
        secret: SECRET,
        name: 'cluster',
        ...('rgw' in shared ? { rgw: shared.rgw, prefix: 'fan-out/' } : {}),
      });
      const mark = await ctx.markUpstream();
      const run = await spreadFanOut(replicas, served.path, n, served.digest);
      const gets = await countBlobGets(mark.log, served.digest);
      outcome = { gets, run };
      ctx.log(`cluster-fan-out: upstream GETs ${blobGetsText(gets)}, ${n - run.failures.length}/${n} clients correct, ${fmt(run.ms)} ms`);
    });
    await Promise.all(replicas.map((r) => r.daemon.stop()));
    const label = `${n} cold clients over ${REPLICAS} replicas (${store}), ${fmt(size / MiB, 1)} MiB blob`;
    if (outcome !== undefined) {
      report.figures.push(
        { label: `Cluster: upstream blob GETs, ${label}`, noRatio: true, cells: { pullgate: { text: blobGetsText(outcome.gets), samples: [outcome.gets.served] } } },
        { label: `Cluster: wall time, ${label}, ms`, noRatio: true, cells: { pullgate: { samples: [outcome.run.ms], failed: outcome.run.failures.length > 0 } } },
      );
      report.notes.push(
        `Cluster fan-out over ${REPLICAS} replicas (${store}; each digest fetched by its owner by rendezvous hashing): upstream blob GETs ${blobGetsText(outcome.gets)}; ` +
          `${n - outcome.run.failures.length}/${n} clients got the whole blob; last client done after ${fmt(outcome.run.ms)} ms.` +
          ('reason' in shared ? ` No shared store because Ceph RGW did not start: ${shared.reason}` : '') +
          (outcome.run.failures.length > 0 ? ` Failures: ${outcome.run.failures.join('; ')}` : ''),
      );
    }
    report.targets.push({
      issue: 11,
      target: `1 upstream GET for ${n} cold clients over ${REPLICAS} replicas`,
      measured: outcome === undefined ? '—' : `${blobGetsText(outcome.gets)}; ${n - outcome.run.failures.length}/${n} clients got the whole blob (${store})`,
      met: outcome === undefined ? undefined : outcome.gets.served === 1 && outcome.gets.other === 0 && outcome.run.failures.length === 0,
    });
    return report;
  },
};
