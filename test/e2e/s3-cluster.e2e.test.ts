// Real parts of cluster mode (issue 11): three `pullgate serve` processes on loopback share one Ceph RGW bucket and
// a static cluster config; the upstream is the distribution registry behind a relay that counts every request.
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { ownerOf } from '../../src/cluster/rendezvous.js';
import { readAccessLog } from '../../support/access-log.js';
import { type Replica, pullgateCli, replicaEnv, startReplicas } from '../../support/cluster-replicas.js';
import { logsOf } from '../../support/diagnostics.js';
import { deterministicBytes, sha256Digest } from '../../support/oci-layout.js';
import { freePort } from '../../support/ports.js';
import { type Rgw, startRgw } from '../../support/rgw.js';
import { skopeoPull } from '../../support/skopeo.js';
import { waitFor } from '../../support/wait.js';
import { startContainerd, writeHostsToml } from './support/containerd.js';
import { CountingRelay } from './support/counting-relay.js';
import { useSuite } from './support/suite.js';
import { type Upstream, startUpstream } from './support/upstream.js';

const MiB = 1024 * 1024;
/** The cold blob of the fan-out and of the owner kill: 200 MiB each (PULLGATE_E2E_CLUSTER_MIB overrides, for a slow machine). */
const BIG = Number(process.env.PULLGATE_E2E_CLUSTER_MIB ?? '200') * MiB;
const CLIENTS = 20;
const SECRET = 'e2e-cluster-secret-0123456789abcdef';
const BIG_REPO = 'e2e/big';

interface Blob {
  digest: string;
  size: number;
  sha: string;
}

/** Uploads `bytes` as a blob of `repository` (monolithic upload: POST, then PUT with the digest). */
async function pushBlob(up: Upstream, repository: string, bytes: Buffer): Promise<Blob> {
  const digest = sha256Digest(bytes);
  const authorization = `Basic ${Buffer.from(`${up.seeder.username}:${up.seeder.password}`).toString('base64')}`;
  const started = await request(`${up.registry.url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { authorization } });
  await started.body.dump();
  if (started.statusCode !== 202) throw new Error(`upload of ${digest} not started: ${started.statusCode}`);
  const location = new URL(String(started.headers.location), up.registry.url);
  location.searchParams.set('digest', digest);
  const put = await request(location.toString(), { method: 'PUT', headers: { authorization, 'content-type': 'application/octet-stream' }, body: bytes });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`upload of ${digest} refused: ${put.statusCode} ${text}`);
  return { digest, size: bytes.length, sha: digest.slice('sha256:'.length) };
}

/** What one client got: a status with the body's length and sha256, or the error that cut it (with the bytes read before). */
type Outcome = { kind: 'body'; status: number; bytes: number; sha: string } | { kind: 'error'; message: string; bytes: number };

/** A client pulling one blob: `headers` settles when its response started, `done` when the body ended or broke. */
function pullBlob(url: string): { headers: Promise<void>; done: Promise<Outcome> } {
  let started = (): void => undefined;
  const headers = new Promise<void>((resolve) => (started = resolve));
  const done = (async (): Promise<Outcome> => {
    let bytes = 0;
    try {
      const res = await request(url);
      started();
      const hash = createHash('sha256');
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        bytes += buf.length;
        hash.update(buf);
      }
      return { kind: 'body', status: res.statusCode, bytes, sha: hash.digest('hex') };
    } catch (err) {
      started();
      return { kind: 'error', message: err instanceof Error ? err.message : String(err), bytes };
    }
  })();
  return { headers, done };
}

function blobUrl(replica: Replica, repository: string, digest: string): string {
  return `${replica.url}/v2/${repository}/blobs/${digest}`;
}

/** GETs of the blob that the registry itself answered with the body (200), from its own access log (skopeo's seeding left out). */
async function registryBlobGets(up: Upstream, digest: string): Promise<number> {
  const entries = await readAccessLog(up.registry.daemon.logPath);
  return entries.filter((e) => e.method === 'GET' && e.status === 200 && e.uri.split('?')[0]?.endsWith(`/blobs/${digest}`) === true && !e.userAgent.startsWith('skopeo/')).length;
}

async function readyz(replica: Replica): Promise<{ status: number; body: string }> {
  const res = await request(`${replica.url}/readyz`);
  return { status: res.statusCode, body: await res.body.text() };
}

describe(`three pullgate replicas sharing one Ceph RGW bucket (${BIG / MiB} MiB cold blobs)`, () => {
  const suite = useSuite('s3-cluster', async (ws) => {
    // RGW and the upstream registry come up side by side.
    const [rgw, up] = await Promise.all([
      startRgw(ws.path('ceph')).then((started: Rgw) => {
        ws.defer(() => started.stop());
        process.stderr.write(`e2e: Ceph RGW ready at ${started.endpoint} in ${started.startupMs} ms\n`);
        return started;
      }),
      startUpstream(ws, 'htpasswd'),
    ]);
    const fanOut = await pushBlob(up, BIG_REPO, deterministicBytes('cluster-fan-out', BIG));
    const killed = await pushBlob(up, BIG_REPO, deterministicBytes('cluster-owner-kill', BIG));
    const whileS3Down = await pushBlob(up, BIG_REPO, deterministicBytes('cluster-s3-down', 16 * MiB));
    const relay = await CountingRelay.start(up.registry.url);
    ws.defer(() => relay.close());
    const replicas = await startReplicas(
      ws,
      { key: up.registry.host, url: relay.url, username: up.puller.username, password: up.puller.password },
      { count: 3, rgw, prefix: 'cluster/', secret: SECRET },
    );
    return { rgw, up, relay, replicas, blobs: { fanOut, killed, whileS3Down }, dead: new Set<string>() };
  });

  const logs = (): string => {
    const { up, replicas } = suite().value;
    return logsOf(up.registry.daemon, ...replicas.map((r) => r.daemon));
  };

  it(`${CLIENTS} clients spread over the three replicas on a cold blob: exactly 1 upstream GET, ${CLIENTS} correct bodies`, async () => {
    const { up, relay, replicas, blobs } = suite().value;
    const blob = blobs.fanOut;
    // Upstream's body stops after 1 MiB until every client has its response headers: all 20 arrive during one cold fill.
    const hold = relay.hold(blob.digest, MiB);
    const started = Date.now();
    const clients = Array.from({ length: CLIENTS }, (_, i) => pullBlob(blobUrl(replicas[i % replicas.length] as Replica, BIG_REPO, blob.digest)));
    await Promise.all(clients.map((c) => c.headers));
    await hold.reached;
    hold.release();
    const outcomes = await Promise.all(clients.map((c) => c.done));
    const ms = Date.now() - started;
    for (const outcome of outcomes) expect(outcome, logs()).toEqual({ kind: 'body', status: 200, bytes: blob.size, sha: blob.sha });
    // One GET carried the blob; at most a first-contact Basic challenge (401, no body) came before it.
    const gets = relay.blobGets(blob.digest);
    expect(gets.filter((status) => status !== 401)).toEqual([200]);
    expect(await registryBlobGets(up, blob.digest)).toBe(1);
    const owner = ownerOf(blob.digest, replicas.map((r) => r.id));
    process.stderr.write(`e2e: cluster fan-out of ${blob.size / MiB} MiB to ${CLIENTS} clients over 3 replicas (owner ${owner ?? '?'}) in ${ms} ms; upstream GET statuses ${JSON.stringify(gets)}\n`);
  });

  it('kill -9 of the owner mid-fill: every client gets the whole correct blob or an error before the last byte; the next pull through a survivor is correct', async () => {
    const { relay, replicas, blobs, dead } = suite().value;
    const blob = blobs.killed;
    const ownerId = ownerOf(blob.digest, replicas.map((r) => r.id));
    const owner = replicas.find((r) => r.id === ownerId);
    const survivors = replicas.filter((r) => r.id !== ownerId);
    if (owner === undefined) throw new Error('no owner among the replicas');
    // Upstream stops mid-body, so the fill is certainly in the middle when the owner dies.
    const hold = relay.hold(blob.digest, Math.floor(blob.size / 3));
    const clients = Array.from({ length: CLIENTS }, (_, i) => pullBlob(blobUrl(replicas[i % replicas.length] as Replica, BIG_REPO, blob.digest)));
    await Promise.all(clients.map((c) => c.headers));
    await hold.reached;
    owner.daemon.child.kill('SIGKILL');
    dead.add(owner.id);
    hold.release();
    const outcomes = await Promise.all(clients.map((c) => c.done));
    for (const outcome of outcomes) {
      if (outcome.kind === 'body' && outcome.status === 200) {
        // A 200 that ended normally must be the whole blob, byte for byte.
        expect({ bytes: outcome.bytes, sha: outcome.sha }, logs()).toEqual({ bytes: blob.size, sha: blob.sha });
      } else {
        // Anything else is an error the client sees, before the last byte.
        expect(outcome.bytes, JSON.stringify(outcome)).toBeLessThan(blob.size);
      }
    }
    const summary = outcomes.map((o) => (o.kind === 'body' && o.status === 200 ? 'whole' : 'error'));
    process.stderr.write(`e2e: owner killed mid-fill: ${summary.filter((s) => s === 'whole').length} whole bodies, ${summary.filter((s) => s === 'error').length} errors, upstream GET statuses ${JSON.stringify(relay.blobGets(blob.digest))}\n`);
    for (const survivor of survivors) {
      const next = await pullBlob(blobUrl(survivor, BIG_REPO, blob.digest)).done;
      expect(next, logs()).toEqual({ kind: 'body', status: 200, bytes: blob.size, sha: blob.sha });
    }
  });

  it('skopeo and containerd (ctr with a hosts.toml mirror) pull the seeded image through one surviving replica', async () => {
    const { ws, value } = suite();
    const { up, replicas, dead } = value;
    const replica = replicas.find((r) => !dead.has(r.id));
    if (replica === undefined) throw new Error('no live replica');
    const ref = `${up.repository}:${up.tag}`;
    const copied = await skopeoPull(`${replica.host}/${ref}`, ws.path('skopeo-out'), up.tag);
    expect(copied.code, `${copied.stderr}\n${logs()}`).toBe(0);

    const cd = await startContainerd(ws);
    // `server` is a port nobody listens on: the pull can only succeed through the replica.
    const hostsDir = await writeHostsToml(ws.path('certs.d'), up.registry.host, `http://127.0.0.1:${await freePort()}`, [{ url: replica.url, capabilities: ['pull', 'resolve'] }]);
    const pulled = await cd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', `${up.registry.host}/${ref}`]);
    expect(pulled.code, `${pulled.stderr}\n${logs()}`).toBe(0);
    for (const [digest, bytes] of up.image.blobs) {
      const got = await cd.ctrOk(['content', 'get', digest]);
      expect(got.stdout.equals(bytes), `ctr content get ${digest}`).toBe(true);
    }
  });

  it('S3 stopped (radosgw killed): pulls still succeed from upstream and /readyz says why; after RGW restarts, `pullgate cache verify` finds the bucket clean', async () => {
    const { rgw, relay, replicas, blobs, dead } = suite().value;
    const replica = replicas.find((r) => !dead.has(r.id));
    if (replica === undefined) throw new Error('no live replica');
    const blob = blobs.whileS3Down;
    await rgw.stopGateway();
    const before = relay.blobTransfers(blob.digest);
    const pulled = await pullBlob(blobUrl(replica, BIG_REPO, blob.digest)).done;
    expect(pulled, logs()).toEqual({ kind: 'body', status: 200, bytes: blob.size, sha: blob.sha });
    expect(relay.blobTransfers(blob.digest) - before).toBe(1);
    // The probe answer is reused for a few seconds: wait for one taken after the stop.
    const down = await waitFor(async () => {
      const answer = await readyz(replica);
      return answer.body.includes('shared store unreachable') ? answer : undefined;
    }, { what: `${replica.name} /readyz to report the shared store unreachable`, timeoutMs: 20_000, intervalMs: 250 });
    expect(down.status).toBe(200);
    const report = JSON.parse(down.body) as { status: string; shared: { location: string; reachable: boolean; reason?: string } };
    expect(report.shared.reachable).toBe(false);
    expect(report.shared.location).toContain(rgw.bucket);
    expect(report.shared.reason ?? '').not.toBe('');
    expect(down.body).not.toContain(rgw.secretAccessKey);

    await rgw.startGateway();
    await waitFor(async () => ((await readyz(replica)).body === '{"status":"ok"}' ? true : undefined), {
      what: `${replica.name} /readyz to report ok after RGW restarts`,
      timeoutMs: 20_000,
      intervalMs: 250,
    });
    // The blob pulled while S3 was down is still served whole.
    const again = await pullBlob(blobUrl(replica, BIG_REPO, blob.digest)).done;
    expect(again).toEqual({ kind: 'body', status: 200, bytes: blob.size, sha: blob.sha });
    const verify = await pullgateCli(['cache', 'verify', '-c', replica.configPath], replicaEnv(rgw, SECRET));
    const out = verify.stdout.toString('utf8');
    process.stderr.write(`e2e: ${out.trim()}\n`);
    expect(out, verify.stderr).toMatch(/and [1-9]\d* shared objects: 0 problems, 0 not repaired/);
    expect(verify.code).toBe(0);
  });
});
