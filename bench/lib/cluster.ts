// What the cluster measures share: a Ceph RGW for the shared store (or the reason there is none), the replicas'
// upstream entry, and GETs spread over several replicas.
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Replica, ReplicaUpstream } from '../../support/cluster-replicas.js';
import { type Rgw, startRgw } from '../../support/rgw.js';
import { waitFor } from '../../support/wait.js';
import type { BenchContext } from './context.js';
import { PULLER } from './constants.js';
import { type FanOut, fanOut } from './probes.js';

/** Starts Ceph RGW in the workspace (stopped with it), or answers why it cannot (packages missing, start failed). */
export async function benchRgw(ctx: BenchContext, name: string): Promise<{ rgw: Rgw } | { reason: string }> {
  try {
    const rgw = await startRgw(await ctx.ws.mkdir(name, 'ceph'));
    ctx.ws.defer(() => rgw.stop());
    ctx.log(`${name}: Ceph RGW ready at ${rgw.endpoint} in ${rgw.startupMs} ms`);
    return { rgw };
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    // rgw.sh says why in one `rgw.sh: …` line; the daemons' log tails after it are for the console.
    return { reason: /rgw\.sh: [^\n]*/.exec(text)?.[0] ?? text.split('\n')[0] ?? text };
  }
}

/** The bench upstream as a replica's registry entry (the puller's login, as every mirror peer has it). */
export function benchUpstream(ctx: BenchContext): ReplicaUpstream {
  return { key: ctx.direct.host, url: ctx.direct.url, username: PULLER.username, password: PULLER.password };
}

/** `n` clients GET `path` at once, client i from replica i mod the count; every body is hashed and checked. */
export function spreadFanOut(replicas: readonly Replica[], path: string, n: number, digest: string): Promise<FanOut> {
  return fanOut((i) => `${replicas[i % replicas.length]?.url ?? ''}${path}`, n, digest);
}

/** Waits until the bucket holds `digest` under `prefix` (a replica uploads a verified blob after its fill). */
export async function waitForObject(rgw: Rgw, prefix: string, digest: string, timeoutMs = 120_000): Promise<void> {
  const client = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  });
  const [algorithm, hex] = digest.split(':');
  const key = `${prefix}blobs/${algorithm ?? ''}/${hex ?? ''}`;
  try {
    await waitFor(
      async () => {
        try {
          await client.send(new HeadObjectCommand({ Bucket: rgw.bucket, Key: key }));
          return true;
        } catch {
          return undefined;
        }
      },
      { what: `s3://${rgw.bucket}/${key}`, timeoutMs, intervalMs: 200 },
    );
  } finally {
    client.destroy();
  }
}
