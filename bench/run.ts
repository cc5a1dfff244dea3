// `npm run bench` (issue 3, item 8): pullgate against nginx serving the same files and against the distribution
// registry in proxy mode, all in front of one distribution upstream on 127.0.0.1 that needs credentials, in one run.
// Prints figures, ratios and the issue's targets, and writes the same to bench/results.md.
//
// The upstream uses token auth (the e2e token server), not htpasswd: distribution 2.8's proxy mode only uses its
// proxy.username/password for a token exchange and never sends Basic credentials to the upstream itself, so in
// front of an htpasswd upstream every proxied request fails (401 upstream, 500/404 to the client).
import { rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release } from 'node:os';
import { join } from 'node:path';
import { logsOf } from '../support/diagnostics.js';
import { diffBlobs, readLayout } from '../support/oci-compare.js';
import { type BuiltImage, type Descriptor, OCI_MANIFEST, buildOciImage, sha256Digest } from '../support/oci-layout.js';
import { type Daemon, run } from '../support/proc.js';
import { type Pullgate, type PullgateConfigInput, REPO_ROOT, startPullgate } from '../support/pullgate.js';
import { type Registry, startRegistry } from '../support/registry.js';
import { createSigningKey } from '../support/signing-key.js';
import { skopeoPull, skopeoPush } from '../support/skopeo.js';
import { type TokenServer, startTokenServer } from '../support/token-server.js';
import { requireTools } from '../support/tools.js';
import { Workspace } from '../support/workspace.js';
import { nginxBinary, startNginx } from './lib/nginx.js';
import { startNodeFloor } from './lib/node-floor.js';
import { type LinkShape, parseLinkShapes, startShapedLink } from './lib/shaped-link.js';
import {
  AccessLogMark,
  type FanOut,
  RssSampler,
  classify,
  expectBody,
  fanOut,
  procCpuSeconds,
  procStatusKiB,
  resetPeakRss,
} from './lib/probes.js';
import { type Table, fmt, markdownTable, median, ratio, textTable } from './lib/report.js';
import { type WrkOptions, type WrkResult, runWrk, wrkErrors } from './lib/wrk.js';

const MiB = 1024 * 1024;
const TAG = '1';
const REPO = { small: 'bench/small', big: 'bench/big', multi: 'bench/multi' } as const;
const PULLER = { username: 'puller', password: 'bench-pull-5d8e' };
const SEEDER = { username: 'seeder', password: 'bench-push-a41b' };
const ACCEPT = `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`;

function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(v) && v > 0 ? v : fallback;
}

const WRK_SECONDS = envNumber('BENCH_WRK_SECONDS', 10);
const COLD_REPS = envNumber('BENCH_COLD_REPS', 3);
const CLIENTS = 20;
const DEADLINE_MS = envNumber('BENCH_DEADLINE_SECONDS', 570) * 1000;
const TAG_TTL = '5m';
/**
 * WAN-like links for the cold pulls that follow the loopback ones (BENCH_LINKS="MBIT,RTT_MS;..."): a
 * 250 Mbit/s share of an uplink 40 ms from the registry, as a CI runner or a node pulling from a public
 * registry sees it, and a 1 Gbit/s link 10 ms away, where this 2-core machine's CPU starts to show.
 */
const LINKS = parseLinkShapes(process.env.BENCH_LINKS, [
  { mbitPerSecond: 250, rttMs: 40 },
  { mbitPerSecond: 1000, rttMs: 10 },
]);
/** BENCH_ONLY=warm,cold,wan,fanout,rss runs only those parts (for profiling); unset runs all. */
const ONLY = process.env.BENCH_ONLY?.split(',').map((p) => p.trim());
function selected(part: 'warm' | 'cold' | 'wan' | 'fanout' | 'rss'): boolean {
  return ONLY === undefined || ONLY.includes(part);
}

const BLOB_WRK: WrkOptions = { threads: 2, connections: 4, durationS: WRK_SECONDS, timeoutS: 30 };
const MANIFEST_WRK: WrkOptions = { threads: 2, connections: 32, durationS: WRK_SECONDS, headers: [`Accept: ${ACCEPT}`] };

const t0 = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------------------
// Results

type UpstreamCounts = ReturnType<typeof classify> & { total: number; tokens: number };

interface ColdPulls {
  pullgate: number[];
  distribution: number[];
  direct: number[];
  /** CPU seconds each fresh peer used for its pull (startup excluded). */
  pullgateCpu: number[];
  distributionCpu: number[];
  imageBytes: number;
  layers: number;
}

type ShapedColdPulls = ColdPulls & { shape: LinkShape };

const emptyColdPulls = (): ColdPulls => ({ pullgate: [], distribution: [], direct: [], pullgateCpu: [], distributionCpu: [], imageBytes: 0, layers: 0 });

interface Results {
  machine: Record<string, string>;
  blob: { pullgate?: WrkResult; nginx?: WrkResult; node?: WrkResult; distribution?: WrkResult; bytes: number };
  tag: { pullgate?: WrkResult; nginxSmall?: WrkResult; nodeSmall?: WrkResult; distribution?: WrkResult };
  tagUpstream: { pullgate?: UpstreamCounts; distribution?: UpstreamCounts };
  digest: { pullgate?: WrkResult; nginxManifest?: WrkResult; nodeManifest?: WrkResult; distribution?: WrkResult };
  cold: ColdPulls;
  /** The same cold pulls with the upstream behind each shaped link of LINKS. */
  coldShaped: ShapedColdPulls[];
  fanout: { pullgate?: { gets: BlobGets; run: FanOut }; distribution?: { gets: BlobGets; run: FanOut } };
  rss?: {
    baselineKiB: number;
    cold: { peakKiB: number; hwmKiB: number; samples: number; run: FanOut; upstreamGets: BlobGets };
    warm: { peakKiB: number; hwmKiB: number | undefined; samples: number; run: FanOut };
    blobBytes: number;
  };
  errors: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Peers

interface Setup {
  upstream: Registry;
  tokens: TokenServer;
  small: BuiltImage;
  big: BuiltImage;
  multi: BuiltImage;
}

function biggestLayer(img: BuiltImage): Descriptor {
  const [first, ...rest] = img.layers;
  if (first === undefined) throw new Error('image without layers');
  return rest.reduce((a, b) => (b.size > a.size ? b : a), first);
}

/** Where a peer reaches the upstream: the registry itself, or a shaped link in front of it. */
interface UpstreamEndpoint {
  host: string;
  url: string;
}

function pullgateConfig(up: UpstreamEndpoint): Omit<PullgateConfigInput, 'listen' | 'storagePath'> {
  return {
    defaultRegistry: up.host,
    registries: [{ key: up.host, url: up.url, username: PULLER.username, password: PULLER.password }],
    cache: { tagTTL: TAG_TTL },
  };
}

async function startPullgateFresh(ws: Workspace, s: Setup, name: string, up: UpstreamEndpoint = s.upstream): Promise<Pullgate> {
  return startPullgate(ws, name, pullgateConfig(up));
}

async function startDistributionProxy(ws: Workspace, s: Setup, name: string, up: UpstreamEndpoint = s.upstream): Promise<Registry> {
  return startRegistry(ws, name, { type: 'none' }, { proxy: { remoteurl: up.url, ...PULLER } });
}

/** Stops a peer started for one measurement and deletes its storage (its log stays until the end). */
async function discard(ws: Workspace, name: string, daemon: Daemon): Promise<void> {
  await daemon.stop();
  await rm(ws.path(name), { recursive: true, force: true });
}

async function setUp(ws: Workspace): Promise<Setup> {
  log('starting the upstream registry (token auth) and its token server');
  const tokens = await startTokenServer(await createSigningKey(await ws.mkdir('token')), {
    [PULLER.username]: { password: PULLER.password, actions: ['pull'] },
    [SEEDER.username]: { password: SEEDER.password, actions: ['pull', 'push'] },
  });
  ws.defer(() => tokens.close());
  const upstream = await startRegistry(ws, 'upstream', { type: 'token', tokenServer: tokens });
  log('building and pushing images: 20 MiB layer, 200 MiB layer, 5 × 10 MiB layers');
  const seed = `${SEEDER.username}:${SEEDER.password}`;
  const small = await buildOciImage(ws.path('layout-small'), { tag: TAG, seed: 'bench-small', bigFileBytes: 20 * MiB });
  await skopeoPush(small.dir, TAG, `${upstream.host}/${REPO.small}:${TAG}`, seed);
  const big = await buildOciImage(ws.path('layout-big'), { tag: TAG, seed: 'bench-big', bigFileBytes: 200 * MiB });
  await skopeoPush(big.dir, TAG, `${upstream.host}/${REPO.big}:${TAG}`, seed);
  const multi = await buildOciImage(ws.path('layout-multi'), {
    tag: TAG,
    seed: 'bench-multi',
    bigFileBytes: 10 * MiB,
    extraLayerBytes: [10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB],
  });
  await skopeoPush(multi.dir, TAG, `${upstream.host}/${REPO.multi}:${TAG}`, seed);
  // The layouts are only needed for the pushes; the blobs stay in memory for the comparisons.
  for (const dir of [small.dir, big.dir, multi.dir]) await rm(dir, { recursive: true, force: true });
  return { upstream, tokens, small, big, multi };
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

/** CPU use of the server process during each wrk run, in % of one core (label -> %). */
const serverCpu = new Map<string, number>();

async function wrk(label: string, url: string, opts: WrkOptions, server?: Daemon): Promise<WrkResult> {
  const pid = server === undefined ? undefined : pidOf(server);
  const cpu0 = pid === undefined ? 0 : await procCpuSeconds(pid);
  const r = await runWrk(url, opts);
  if (pid !== undefined) serverCpu.set(label, ((await procCpuSeconds(pid)) - cpu0) / r.seconds * 100);
  const errors = wrkErrors(r);
  const cpu = serverCpu.get(label);
  log(
    `wrk ${label}: ${fmt(r.reqPerSec, 1)} req/s, ${fmt(r.bytesPerSec / MiB, 1)} MB/s` +
      (cpu === undefined ? '' : `, server CPU ${fmt(cpu)}% of one core`) +
      (errors > 0 ? `, ${errors} errors (non-2xx ${r.non2xx}, socket ${JSON.stringify(r.socketErrors)})` : ''),
  );
  return r;
}

/** Where the upstream's access log and its token server's request list stood. */
interface UpstreamMark {
  log: AccessLogMark;
  tokens: number;
}

async function markUpstream(s: Setup): Promise<UpstreamMark> {
  return { log: await AccessLogMark.at(s.upstream.daemon.logPath), tokens: s.tokens.requests.length };
}

async function upstreamCounts(s: Setup, mark: UpstreamMark): Promise<UpstreamCounts> {
  const entries = await mark.log.since();
  return { ...classify(entries), total: entries.length, tokens: s.tokens.requests.length - mark.tokens };
}

/** Runs `step`, recording its failure (with the peers' log tails on the console) instead of ending the bench. */
async function phase(res: Results, name: string, daemons: () => readonly Daemon[], step: () => Promise<void>): Promise<void> {
  log(`== ${name}`);
  try {
    await step();
  } catch (err) {
    const msg = `${name}: ${errorText(err)}`;
    res.errors.push(msg);
    log(`FAILED ${msg}`);
    const ds = daemons();
    if (ds.length > 0) process.stderr.write(`${logsOf(...ds)}\n`);
  }
}

async function measureWarm(ws: Workspace, s: Setup, res: Results): Promise<void> {
  const pg = await startPullgate(ws, 'pullgate', pullgateConfig(s.upstream));
  const dist = await startDistributionProxy(ws, s, 'distribution');
  const layer = biggestLayer(s.small);
  const layerBytes = s.small.blobs.get(layer.digest);
  if (layerBytes === undefined) throw new Error('20 MiB layer bytes missing');
  res.blob.bytes = layer.size;
  // The static-file peers serve the same bytes pullgate does.
  const files = new Map([
    ['small.txt', Buffer.from('ok\n')],
    ['manifest.json', s.small.manifest],
    ['blob.bin', layerBytes],
  ]);
  const nginx = await startNginx(ws, 'nginx', files);
  const node = await startNodeFloor(ws, 'node-ceiling', files);
  const daemons = (): Daemon[] => [pg.daemon, dist.daemon, nginx.daemon, node.daemon, s.upstream.daemon];
  const blobPath = `/v2/${REPO.small}/blobs/${layer.digest}`;
  const tagPath = `/v2/${REPO.small}/manifests/${TAG}`;
  const digestPath = `/v2/${REPO.small}/manifests/${s.small.manifestDigest}`;
  const accept = { accept: ACCEPT };

  const blob = `${fmt(layer.size / MiB, 1)} MiB blob`;
  // Each figure is its own step, so that one peer failing still leaves the others' figures.
  // Blobs: one warm-up GET fills each cache; a second one checks that the cached copy is served whole.
  await phase(res, `warm ${blob}, pullgate (wrk -t2 -c4)`, daemons, async () => {
    await expectBody(`${pg.url}${blobPath}`, layer.digest);
    await expectBody(`${pg.url}${blobPath}`, layer.digest);
    res.blob.pullgate = await wrk('blob pullgate', `${pg.url}${blobPath}`, BLOB_WRK, pg.daemon);
  });
  await phase(res, `${blob}, nginx (wrk -t2 -c4)`, daemons, async () => {
    await expectBody(`${nginx.url}/blob.bin`, layer.digest);
    res.blob.nginx = await wrk('blob nginx', `${nginx.url}/blob.bin`, BLOB_WRK);
  });
  await phase(res, `${blob}, node:http alone (wrk -t2 -c4)`, daemons, async () => {
    await expectBody(`${node.url}/blob.bin`, layer.digest);
    res.blob.node = await wrk('blob node:http alone', `${node.url}/blob.bin`, BLOB_WRK, node.daemon);
  });
  await phase(res, `warm ${blob}, distribution proxy (wrk -t2 -c4)`, daemons, async () => {
    await expectBody(`${dist.url}${blobPath}`, layer.digest);
    await expectBody(`${dist.url}${blobPath}`, layer.digest);
    res.blob.distribution = await wrk('blob distribution', `${dist.url}${blobPath}`, BLOB_WRK, dist.daemon);
  });

  // Manifests by tag: a warm-up GET, then wrk while the upstream's requests and token grants are counted.
  await phase(res, 'warm manifest by tag, pullgate (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${pg.url}${tagPath}`, s.small.manifestDigest, accept);
    const mark = await markUpstream(s);
    res.tag.pullgate = await wrk('tag pullgate', `${pg.url}${tagPath}`, MANIFEST_WRK, pg.daemon);
    res.tagUpstream.pullgate = await upstreamCounts(s, mark);
    log(`upstream during the pullgate tag run: ${JSON.stringify(res.tagUpstream.pullgate)}`);
  });
  await phase(res, 'warm manifest by tag, distribution proxy (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${dist.url}${tagPath}`, s.small.manifestDigest, accept);
    const mark = await markUpstream(s);
    res.tag.distribution = await wrk('tag distribution', `${dist.url}${tagPath}`, MANIFEST_WRK, dist.daemon);
    res.tagUpstream.distribution = await upstreamCounts(s, mark);
    log(`upstream during the distribution tag run: ${JSON.stringify(res.tagUpstream.distribution)}`);
  });
  await phase(res, '3-byte file, nginx (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${nginx.url}/small.txt`, sha256Digest(Buffer.from('ok\n')));
    res.tag.nginxSmall = await wrk('3-byte file nginx', `${nginx.url}/small.txt`, MANIFEST_WRK);
  });
  await phase(res, '3-byte file, node:http alone (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${node.url}/small.txt`, sha256Digest(Buffer.from('ok\n')));
    res.tag.nodeSmall = await wrk('3-byte file node:http alone', `${node.url}/small.txt`, MANIFEST_WRK, node.daemon);
  });

  await phase(res, 'warm manifest by digest, pullgate (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${pg.url}${digestPath}`, s.small.manifestDigest, accept);
    res.digest.pullgate = await wrk('digest pullgate', `${pg.url}${digestPath}`, MANIFEST_WRK, pg.daemon);
  });
  await phase(res, 'warm manifest by digest, distribution proxy (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${dist.url}${digestPath}`, s.small.manifestDigest, accept);
    res.digest.distribution = await wrk('digest distribution', `${dist.url}${digestPath}`, MANIFEST_WRK, dist.daemon);
  });
  await phase(res, 'manifest file, nginx (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${nginx.url}/manifest.json`, s.small.manifestDigest);
    res.digest.nginxManifest = await wrk('manifest file nginx', `${nginx.url}/manifest.json`, MANIFEST_WRK);
  });
  await phase(res, 'manifest file, node:http alone (wrk -t2 -c32)', daemons, async () => {
    await expectBody(`${node.url}/manifest.json`, s.small.manifestDigest);
    res.digest.nodeManifest = await wrk('manifest file node:http alone', `${node.url}/manifest.json`, MANIFEST_WRK, node.daemon);
  });

  for (const [name, d] of [['pullgate', pg.daemon], ['distribution', dist.daemon], ['nginx', nginx.daemon], ['node-ceiling', node.daemon]] as const) {
    await discard(ws, name, d);
  }
}

async function timedPull(ws: Workspace, src: string, img: BuiltImage, creds: string | undefined): Promise<number> {
  const dir = ws.path(`pull-${Math.random().toString(36).slice(2)}`);
  const started = performance.now();
  const r = await skopeoPull(src, dir, TAG, creds);
  const seconds = (performance.now() - started) / 1000;
  try {
    if (r.code !== 0) throw new Error(`skopeo copy docker://${src} exited ${r.code}: ${r.stderr.trim()}`);
    const layout = await readLayout(dir, TAG);
    const problems = diffBlobs(img, layout.blobs);
    if (layout.manifestDigest !== img.manifestDigest) problems.push(`tagged manifest ${String(layout.manifestDigest)}`);
    if (problems.length > 0) throw new Error(`skopeo copy docker://${src} wrote a different image: ${problems.join('; ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return seconds;
}

function pidOf(d: Daemon): number {
  const pid = d.child.pid;
  if (pid === undefined) throw new Error(`${d.name} has no pid`);
  return pid;
}

/**
 * A cold pull of `ref` through a fresh peer, and the CPU seconds the peer used for it. A mirror is a
 * long-running process: it is warmed first (JIT, connections, token path) with another image, so the
 * timed pull measures a cold cache, not a cold process.
 */
async function coldPullThrough(ws: Workspace, s: Setup, peer: { host: string; daemon: Daemon }, ref: string): Promise<{ seconds: number; cpu: number }> {
  await timedPull(ws, `${peer.host}/${REPO.small}:${TAG}`, s.small, undefined);
  const cpu0 = await procCpuSeconds(pidOf(peer.daemon));
  const seconds = await timedPull(ws, `${peer.host}/${ref}`, s.multi, undefined);
  return { seconds, cpu: (await procCpuSeconds(pidOf(peer.daemon))) - cpu0 };
}

/**
 * COLD_REPS rounds of: a direct pull from `up`, a pull through a fresh pullgate, one through a fresh
 * distribution proxy, both in front of `up`, into `into`.
 */
async function measureColdPulls(ws: Workspace, s: Setup, res: Results, into: ColdPulls, up: UpstreamEndpoint, label: string): Promise<void> {
  const ref = `${REPO.multi}:${TAG}`;
  const creds = `${PULLER.username}:${PULLER.password}`;
  into.imageBytes = s.multi.layers.reduce((n, l) => n + l.size, s.multi.config.size);
  into.layers = s.multi.layers.length;
  let current: Daemon[] = [];
  await phase(res, `cold pull of ${ref} (${into.layers} layers) ${label}, skopeo copy, ${COLD_REPS}× with fresh caches`, () => [...current, s.upstream.daemon], async () => {
    // Not counted: brings the upstream's files into the page cache and skopeo's binary into memory.
    await timedPull(ws, `${up.host}/${ref}`, s.multi, creds);
    for (let i = 0; i < COLD_REPS; i += 1) {
      const direct = await timedPull(ws, `${up.host}/${ref}`, s.multi, creds);
      into.direct.push(direct);

      const pgName = `pullgate-cold-${i}`;
      const pg = await startPullgateFresh(ws, s, pgName, up);
      current = [pg.daemon];
      const viaPg = await coldPullThrough(ws, s, pg, ref);
      into.pullgate.push(viaPg.seconds);
      into.pullgateCpu.push(viaPg.cpu);
      await discard(ws, pgName, pg.daemon);

      const distName = `distribution-cold-${i}`;
      const dist = await startDistributionProxy(ws, s, distName, up);
      current = [dist.daemon];
      const viaDist = await coldPullThrough(ws, s, dist, ref);
      into.distribution.push(viaDist.seconds);
      into.distributionCpu.push(viaDist.cpu);
      await discard(ws, distName, dist.daemon);
      current = [];
      log(`cold pull #${i + 1} ${label}: direct ${direct.toFixed(2)} s, pullgate ${viaPg.seconds.toFixed(2)} s, distribution ${viaDist.seconds.toFixed(2)} s`);
    }
  });
}

function linkText(shape: LinkShape): string {
  return `${fmt(shape.mbitPerSecond)} Mbit/s, ${fmt(shape.rttMs)} ms RTT`;
}

/** The cold pulls again, every peer (and the direct pull) reaching the upstream through one shaped link. */
async function measureShapedColdPulls(ws: Workspace, s: Setup, res: Results, shape: LinkShape): Promise<void> {
  const into: ShapedColdPulls = { ...emptyColdPulls(), shape };
  res.coldShaped.push(into);
  const link = await startShapedLink(s.upstream.host, shape);
  try {
    await measureColdPulls(ws, s, res, into, link, `over a ${linkText(shape)} link`);
  } finally {
    await link.close();
  }
}

/** Upstream GETs of one blob since the mark: answered with the content (2xx/3xx), challenged (401), other. */
interface BlobGets {
  served: number;
  challenged: number;
  other: number;
}

async function countBlobGets(mark: AccessLogMark, digest: string): Promise<BlobGets> {
  const entries = await mark.since(500);
  const gets = entries.filter((e) => e.method === 'GET' && (e.uri.split('?')[0] ?? '').endsWith(`/blobs/${digest}`));
  return {
    served: gets.filter((e) => e.status < 400).length,
    challenged: gets.filter((e) => e.status === 401).length,
    other: gets.filter((e) => e.status >= 400 && e.status !== 401).length,
  };
}

function blobGetsText(g: BlobGets): string {
  return `${g.served} served` + (g.challenged > 0 ? ` (+${g.challenged} answered 401)` : '') + (g.other > 0 ? ` (+${g.other} failed)` : '');
}

async function measureFanOut(ws: Workspace, s: Setup, res: Results): Promise<void> {
  const layer = biggestLayer(s.small);
  const path = `/v2/${REPO.small}/blobs/${layer.digest}`;
  let current: Daemon[] = [];
  await phase(res, `${CLIENTS} concurrent cold clients of the ${fmt(layer.size / MiB, 1)} MiB blob: upstream GETs`, () => [...current, s.upstream.daemon], async () => {
    const pg = await startPullgateFresh(ws, s, 'pullgate-fanout');
    current = [pg.daemon];
    let mark = await AccessLogMark.at(s.upstream.daemon.logPath);
    const pgRun = await fanOut(`${pg.url}${path}`, CLIENTS, layer.digest);
    res.fanout.pullgate = { gets: await countBlobGets(mark, layer.digest), run: pgRun };
    log(`pullgate: upstream GETs ${blobGetsText(res.fanout.pullgate.gets)}, ${CLIENTS - pgRun.failures.length}/${CLIENTS} clients correct, ${fmt(pgRun.ms)} ms`);
    for (const f of pgRun.failures) log(`  pullgate ${f}`);
    await discard(ws, 'pullgate-fanout', pg.daemon);

    const dist = await startDistributionProxy(ws, s, 'distribution-fanout');
    current = [dist.daemon];
    mark = await AccessLogMark.at(s.upstream.daemon.logPath);
    const distRun = await fanOut(`${dist.url}${path}`, CLIENTS, layer.digest);
    res.fanout.distribution = { gets: await countBlobGets(mark, layer.digest), run: distRun };
    log(`distribution: upstream GETs ${blobGetsText(res.fanout.distribution.gets)}, ${CLIENTS - distRun.failures.length}/${CLIENTS} clients correct, ${fmt(distRun.ms)} ms`);
    for (const f of distRun.failures) log(`  distribution ${f}`);
    await discard(ws, 'distribution-fanout', dist.daemon);
    current = [];
  });
}

async function measureRss(ws: Workspace, s: Setup, res: Results): Promise<void> {
  const layer = biggestLayer(s.big);
  let current: Daemon[] = [];
  await phase(res, `pullgate RSS while ${CLIENTS} clients stream the ${fmt(layer.size / MiB)} MiB blob (cold, then warm)`, () => [...current, s.upstream.daemon], async () => {
    const pg = await startPullgateFresh(ws, s, 'pullgate-rss');
    current = [pg.daemon];
    const pid = pidOf(pg.daemon);
    const url = `${pg.url}/v2/${REPO.big}/blobs/${layer.digest}`;
    const baselineKiB = await procStatusKiB(pid, 'VmRSS');

    const mark = await AccessLogMark.at(s.upstream.daemon.logPath);
    let sampler = new RssSampler(pid);
    const coldRun = await fanOut(url, CLIENTS, layer.digest);
    const coldSampled = sampler.stop();
    const coldHwm = await procStatusKiB(pid, 'VmHWM');
    const upstreamGets = await countBlobGets(mark, layer.digest);
    log(`cold: peak VmRSS ${fmt(coldSampled.peakKiB / 1024, 1)} MiB (${coldSampled.samples} samples), VmHWM ${fmt(coldHwm / 1024, 1)} MiB, upstream GETs ${blobGetsText(upstreamGets)}, ${CLIENTS - coldRun.failures.length}/${CLIENTS} correct, ${fmt(coldRun.ms)} ms`);
    for (const f of coldRun.failures) log(`  cold ${f}`);

    const reset = await resetPeakRss(pid);
    sampler = new RssSampler(pid);
    const warmRun = await fanOut(url, CLIENTS, layer.digest);
    const warmSampled = sampler.stop();
    const warmHwm = reset ? await procStatusKiB(pid, 'VmHWM') : undefined;
    log(`warm: peak VmRSS ${fmt(warmSampled.peakKiB / 1024, 1)} MiB (${warmSampled.samples} samples), VmHWM ${warmHwm === undefined ? 'n/a (clear_refs refused)' : `${fmt(warmHwm / 1024, 1)} MiB`}, ${CLIENTS - warmRun.failures.length}/${CLIENTS} correct, ${fmt(warmRun.ms)} ms`);
    for (const f of warmRun.failures) log(`  warm ${f}`);
    res.rss = {
      baselineKiB,
      blobBytes: layer.size,
      cold: { peakKiB: coldSampled.peakKiB, hwmKiB: coldHwm, samples: coldSampled.samples, run: coldRun, upstreamGets },
      warm: { peakKiB: warmSampled.peakKiB, hwmKiB: warmHwm, samples: warmSampled.samples, run: warmRun },
    };
    await discard(ws, 'pullgate-rss', pg.daemon);
    current = [];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const mbps = (r: WrkResult | undefined): number => (r === undefined ? Number.NaN : r.bytesPerSec / MiB);
const rps = (r: WrkResult | undefined): number => (r === undefined ? Number.NaN : r.reqPerSec);
const flag = (r: WrkResult | undefined): string => (r !== undefined && wrkErrors(r) > 0 ? ' (errors!)' : '');
const cell = (n: number, digits: number, r?: WrkResult): string => (Number.isFinite(n) ? `${fmt(n, digits)}${flag(r)}` : '—');
/** The node:http-alone figure with its ratio to nginx: the share of the gap that is Node's, not pullgate's. */
const ceiling = (n: number, nginx: number, r?: WrkResult): string => (Number.isFinite(n) ? `${cell(n, 0, r)} (${ratio(n, nginx)})` : '—');
const secs = (xs: readonly number[]): string => (xs.length === 0 ? '—' : `${median(xs).toFixed(2)} s`);
const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${fmt(kib / 1024, 1)} MiB`);
const perReq = (n: number | undefined, r: WrkResult | undefined): string =>
  n === undefined || r === undefined || r.requests === 0 ? '—' : `${fmt(n)} (${fmt(n / r.requests, 2)} per request)`;

function figuresTable(r: Results): Table {
  const blobMiB = fmt(r.blob.bytes / MiB, 1);
  const coldMiB = fmt(r.cold.imageBytes / MiB, 1);
  const pgRss = r.rss;
  return {
    header: ['Measure', 'pullgate', 'nginx', 'node:http alone (/nginx)', 'distribution proxy', 'direct (upstream)', 'pullgate/nginx', 'pullgate/distribution', 'pullgate/direct'],
    rows: [
      [
        `Warm ${blobMiB} MiB blob, MB/s`,
        cell(mbps(r.blob.pullgate), 0, r.blob.pullgate),
        cell(mbps(r.blob.nginx), 0, r.blob.nginx),
        ceiling(mbps(r.blob.node), mbps(r.blob.nginx), r.blob.node),
        cell(mbps(r.blob.distribution), 0, r.blob.distribution),
        '',
        ratio(mbps(r.blob.pullgate), mbps(r.blob.nginx)),
        ratio(mbps(r.blob.pullgate), mbps(r.blob.distribution)),
        '',
      ],
      [
        `Manifest by tag (within TTL), req/s (nginx: 3-byte file)`,
        cell(rps(r.tag.pullgate), 0, r.tag.pullgate),
        cell(rps(r.tag.nginxSmall), 0, r.tag.nginxSmall),
        ceiling(rps(r.tag.nodeSmall), rps(r.tag.nginxSmall), r.tag.nodeSmall),
        cell(rps(r.tag.distribution), 0, r.tag.distribution),
        '',
        ratio(rps(r.tag.pullgate), rps(r.tag.nginxSmall)),
        ratio(rps(r.tag.pullgate), rps(r.tag.distribution)),
        '',
      ],
      [
        `Manifest by digest, req/s (nginx: manifest file)`,
        cell(rps(r.digest.pullgate), 0, r.digest.pullgate),
        cell(rps(r.digest.nginxManifest), 0, r.digest.nginxManifest),
        ceiling(rps(r.digest.nodeManifest), rps(r.digest.nginxManifest), r.digest.nodeManifest),
        cell(rps(r.digest.distribution), 0, r.digest.distribution),
        '',
        ratio(rps(r.digest.pullgate), rps(r.digest.nginxManifest)),
        ratio(rps(r.digest.pullgate), rps(r.digest.distribution)),
        '',
      ],
      [
        'Upstream manifest requests during the tag run',
        perReq(r.tagUpstream.pullgate?.manifests, r.tag.pullgate),
        '',
        '',
        perReq(r.tagUpstream.distribution?.manifests, r.tag.distribution),
        '',
        '',
        '',
        '',
      ],
      [
        'Upstream token requests during the tag run',
        perReq(r.tagUpstream.pullgate?.tokens, r.tag.pullgate),
        '',
        '',
        perReq(r.tagUpstream.distribution?.tokens, r.tag.distribution),
        '',
        '',
        '',
        '',
      ],
      coldRow(r.cold, `Cold pull on loopback, ${r.cold.layers} layers / ${coldMiB} MiB, skopeo copy (median of ${r.cold.direct.length})`),
      ...r.coldShaped.map((c) => coldRow(c, `Cold pull over a ${linkText(c.shape)} link (median of ${c.direct.length})`)),
      [
        `Upstream blob GETs, ${CLIENTS} concurrent cold clients, ${blobMiB} MiB blob`,
        r.fanout.pullgate === undefined ? '—' : blobGetsText(r.fanout.pullgate.gets),
        '',
        '',
        r.fanout.distribution === undefined ? '—' : blobGetsText(r.fanout.distribution.gets),
        '',
        '',
        '',
        '',
      ],
      [
        `Peak RSS, ${CLIENTS} clients × ${fmt((pgRss?.blobBytes ?? 0) / MiB)} MiB blob, cold / warm`,
        pgRss === undefined ? '—' : `${mib(coldPeak(pgRss))} / ${mib(warmPeak(pgRss))}`,
        '',
        '',
        '',
        '',
        '',
        '',
        '',
      ],
    ],
  };
}

function coldRow(c: ColdPulls, label: string): string[] {
  return [
    label,
    secs(c.pullgate),
    '',
    '',
    secs(c.distribution),
    secs(c.direct),
    '',
    ratio(median(c.pullgate), median(c.distribution)),
    ratio(median(c.pullgate), median(c.direct)),
  ];
}

function coldVerdict(c: ColdPulls, label: string): Verdict {
  const x = median(c.pullgate) / median(c.direct);
  return [
    label,
    `${ratio(median(c.pullgate), median(c.direct))} (${secs(c.pullgate)} vs ${secs(c.direct)})`,
    verdict(Number.isFinite(x) && c.pullgate.length === c.direct.length ? x <= 1.1 : undefined),
  ];
}

function coldPeak(rss: NonNullable<Results['rss']>): number {
  return Math.max(rss.cold.peakKiB, rss.cold.hwmKiB);
}

function warmPeak(rss: NonNullable<Results['rss']>): number {
  return Math.max(rss.warm.peakKiB, rss.warm.hwmKiB ?? 0);
}

type Verdict = [target: string, measured: string, met: string];

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'not measured' : ok ? 'yes' : 'NO';
}

function targetsTable(r: Results): Table {
  const rows: Verdict[] = [];
  const ok = (w: WrkResult | undefined): boolean => w !== undefined && wrkErrors(w) === 0;
  const pgBlob = mbps(r.blob.pullgate) / mbps(r.blob.nginx);
  rows.push([
    'Warm blob ≥ 0.9× nginx',
    `${ratio(mbps(r.blob.pullgate), mbps(r.blob.nginx))} (${cell(mbps(r.blob.pullgate), 0)} vs ${cell(mbps(r.blob.nginx), 0)} MB/s)`,
    verdict(Number.isFinite(pgBlob) ? pgBlob >= 0.9 && ok(r.blob.pullgate) : undefined),
  ]);
  const tagDist = rps(r.tag.pullgate) / rps(r.tag.distribution);
  rows.push([
    'Manifest by tag ≥ 20× distribution',
    `${ratio(rps(r.tag.pullgate), rps(r.tag.distribution))} (${cell(rps(r.tag.pullgate), 0)} vs ${cell(rps(r.tag.distribution), 0)} req/s)`,
    verdict(Number.isFinite(tagDist) ? tagDist >= 20 && ok(r.tag.pullgate) : undefined),
  ]);
  const tagNginx = rps(r.tag.pullgate) / rps(r.tag.nginxSmall);
  rows.push([
    'Manifest by tag ≥ 0.4× nginx small file',
    `${ratio(rps(r.tag.pullgate), rps(r.tag.nginxSmall))} (${cell(rps(r.tag.pullgate), 0)} vs ${cell(rps(r.tag.nginxSmall), 0)} req/s)`,
    verdict(Number.isFinite(tagNginx) ? tagNginx >= 0.4 && ok(r.tag.pullgate) : undefined),
  ]);
  rows.push(coldVerdict(r.cold, 'Cold pull ≤ 1.1× direct, on loopback'));
  for (const c of r.coldShaped) rows.push(coldVerdict(c, `Cold pull ≤ 1.1× direct, over a ${linkText(c.shape)} link`));
  const fo = r.fanout.pullgate;
  rows.push([
    `1 upstream GET for ${CLIENTS} cold clients`,
    fo === undefined ? '—' : `${blobGetsText(fo.gets)}; ${CLIENTS - fo.run.failures.length}/${CLIENTS} clients got the whole blob`,
    verdict(fo === undefined ? undefined : fo.gets.served === 1 && fo.gets.other === 0 && fo.run.failures.length === 0),
  ]);
  const rss = r.rss;
  const peak = rss === undefined ? undefined : Math.max(coldPeak(rss), warmPeak(rss));
  rows.push([
    'Peak RSS ≤ 150 MB (MiB here)',
    rss === undefined || peak === undefined ? '—' : `${mib(peak)} (cold ${mib(coldPeak(rss))}, warm ${mib(warmPeak(rss))})`,
    verdict(
      rss === undefined || peak === undefined ? undefined : peak <= 150 * 1024 && rss.cold.run.failures.length === 0 && rss.warm.run.failures.length === 0,
    ),
  ]);
  return { header: ['Target (issue 3)', 'Measured', 'Met'], rows };
}

function wrkNote(label: string, w: WrkResult | undefined): string | undefined {
  if (w === undefined) return undefined;
  const s = w.socketErrors;
  const cpu = serverCpu.get(label);
  return (
    `${label}: ${fmt(w.requests)} requests in ${w.seconds.toFixed(2)} s, ${fmt(w.reqPerSec, 1)} req/s, ` +
    `${fmt(w.bytesPerSec / MiB, 1)} MB/s; non-2xx ${w.non2xx}, socket errors connect ${s.connect} / read ${s.read} / write ${s.write} / timeout ${s.timeout}` +
    (cpu === undefined ? '' : `; server process CPU ${fmt(cpu)}% of one core`)
  );
}

function notes(r: Results): string[] {
  const out: string[] = [];
  out.push(
    `All peers on 127.0.0.1 of this machine, with wrk and the clients; MB = 2^20 bytes (wrk's Transfer/sec). ` +
      `wrk ${WRK_SECONDS} s per figure: blob -t2 -c4, manifests -t2 -c32 with Accept: ${ACCEPT}. ` +
      'Upstream: distribution with token auth (the e2e token server, in the bench process; distribution 2.8 proxy mode cannot send Basic credentials upstream, so htpasswd is not an option); ' +
      `pullgate: type basic credentials, cache.tagTTL ${TAG_TTL}, default log level; distribution proxy: proxy.remoteurl/username/password, own storage, access log on; ` +
      'nginx: worker_processes auto, sendfile on, access_log off; node:http alone (bench/lib/node-floor-server.mjs): the same files from node:http with no routing, hooks or log, blobs through two reused buffers, pullgate\'s node flags. Every figure follows a warm-up GET whose body was checked against its digest.',
  );
  for (const [label, w] of [
    ['blob pullgate', r.blob.pullgate],
    ['blob nginx', r.blob.nginx],
    ['blob node:http alone', r.blob.node],
    ['blob distribution', r.blob.distribution],
    ['tag pullgate', r.tag.pullgate],
    ['tag distribution', r.tag.distribution],
    ['3-byte file nginx', r.tag.nginxSmall],
    ['3-byte file node:http alone', r.tag.nodeSmall],
    ['digest pullgate', r.digest.pullgate],
    ['digest distribution', r.digest.distribution],
    ['manifest file nginx', r.digest.nginxManifest],
    ['manifest file node:http alone', r.digest.nodeManifest],
  ] as const) {
    const n = wrkNote(label, w);
    if (n !== undefined) out.push(n);
  }
  for (const [label, c] of [['pullgate', r.tagUpstream.pullgate], ['distribution', r.tagUpstream.distribution]] as const) {
    if (c !== undefined) {
      out.push(
        `Upstream requests during the ${label} tag run: ${c.total} in all (manifests ${c.manifests}, /v2/ pings ${c.pings}, blob GETs ${c.blobGets}, blob HEADs ${c.blobHeads}, other ${c.other}); token requests ${c.tokens}.`,
      );
    }
  }
  const list = (xs: readonly number[]): string => xs.map((x) => x.toFixed(2)).join(', ');
  for (const [c, where] of [[r.cold, 'on loopback'], ...r.coldShaped.map((x) => [x, `over a ${linkText(x.shape)} link`] as const)] as const) {
    if (c.direct.length === 0) continue;
    out.push(
      `Cold pulls ${where} (s, each through a fresh pullgate / distribution with an empty cache, warmed first by a pull of another image; after one uncounted direct pull): ` +
        `direct ${list(c.direct)}; pullgate ${list(c.pullgate)}; distribution ${list(c.distribution)}. ` +
        `CPU seconds used by the peer during each pull: pullgate ${list(c.pullgateCpu)}; distribution ${list(c.distributionCpu)}.`,
    );
  }
  if (r.coldShaped.length > 0) {
    out.push(
      'Shaped links (bench/lib/shaped-link.ts): a relay in the bench process in front of the upstream registry (not its token server) adds half the RTT in each direction ' +
        'and lets the bytes towards the clients through at the link rate, shared by all connections in arrival order; the direct pull and both mirrors use the same link.',
    );
  }
  for (const [label, f] of [['pullgate', r.fanout.pullgate], ['distribution', r.fanout.distribution]] as const) {
    if (f !== undefined) {
      out.push(
        `Fan-out through ${label} (fresh instance): upstream blob GETs ${blobGetsText(f.gets)}; ${CLIENTS - f.run.failures.length}/${CLIENTS} clients got the whole blob; last client done after ${fmt(f.run.ms)} ms.` +
          (f.run.failures.length > 0 ? ` Failures: ${f.run.failures.join('; ')}` : ''),
      );
    }
  }
  if (r.rss !== undefined) {
    const x = r.rss;
    const gib = (CLIENTS * x.blobBytes) / 2 ** 30;
    out.push(
      `RSS (fresh pullgate, VmRSS polled every 20 ms plus VmHWM): ${mib(x.baselineKiB)} idle; cold: polled peak ${mib(x.cold.peakKiB)}, VmHWM ${mib(x.cold.hwmKiB)}, ` +
        `upstream GETs ${blobGetsText(x.cold.upstreamGets)}, ${fmt(gib, 1)} GiB served in ${fmt(x.cold.run.ms)} ms; ` +
        `warm (VmHWM reset via clear_refs): polled peak ${mib(x.warm.peakKiB)}, VmHWM ${mib(x.warm.hwmKiB)}, served in ${fmt(x.warm.run.ms)} ms.` +
        ([...x.cold.run.failures, ...x.warm.run.failures].length > 0 ? ` Failures: ${[...x.cold.run.failures, ...x.warm.run.failures].join('; ')}` : ''),
    );
  }
  for (const e of r.errors) out.push(`FAILED ${e}`);
  return out;
}

function render(r: Results): { text: string; markdown: string } {
  const figures = figuresTable(r);
  const targets = targetsTable(r);
  const machine = Object.entries(r.machine).map(([k, v]) => `${k}: ${v}`);
  const ns = notes(r);
  const text = [
    '',
    'pullgate benchmark',
    ...machine.map((m) => `  ${m}`),
    '',
    textTable(figures),
    '',
    textTable(targets),
    '',
    ...ns.map((n) => `- ${n}`),
    '',
  ].join('\n');
  const markdown = [
    '# pullgate benchmark',
    '',
    'Written by `npm run bench` (bench/run.ts); see issue 3, item 8.',
    '',
    ...machine.map((m) => `- ${m}`),
    '',
    '## Figures',
    '',
    markdownTable(figures),
    '',
    '## Targets',
    '',
    markdownTable(targets),
    '',
    '## Notes',
    '',
    ...ns.map((n) => `- ${n}`),
    '',
  ].join('\n');
  return { text, markdown };
}

async function versionOf(command: string, args: readonly string[]): Promise<string> {
  try {
    const r = await run(command, args, { timeoutMs: 10_000 });
    const out = `${r.stdout.toString('utf8')}\n${r.stderr}`.split('\n').find((l) => l.trim() !== '');
    return out?.trim() ?? 'unknown';
  } catch (err) {
    throw new Error(`${command} is missing (${errorText(err)}); run \`bash bench/install-bench-deps.sh\``);
  }
}

async function machineFacts(): Promise<Record<string, string>> {
  return {
    date: new Date().toISOString(),
    machine: `${availableParallelism()} CPUs (nproc), ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Linux ${release()}`,
    node: process.version,
    peers: [
      await versionOf('docker-registry', ['--version']),
      await versionOf(nginxBinary(), ['-v']),
      await versionOf('wrk', ['-v']),
      await versionOf('skopeo', ['--version']),
    ].join('; '),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main: bounded runtime; every child and the workspace removed on success, failure, deadline or signal.

let workspace: Workspace | undefined;
let closing: Promise<void> | undefined;

async function cleanUp(): Promise<void> {
  closing ??= (async () => {
    const ws = workspace;
    if (ws === undefined) return;
    log(`cleaning up ${ws.dir}`);
    try {
      await ws.close();
    } catch (err) {
      log(`cleanup: ${errorText(err)}`);
    }
  })();
  return closing;
}

async function abort(reason: string, code: number): Promise<never> {
  log(`${reason}: stopping every peer`);
  await Promise.race([cleanUp(), new Promise((r) => setTimeout(r, 30_000))]);
  process.exit(code);
}

async function main(): Promise<number> {
  requireTools(['docker-registry', 'skopeo', 'openssl']);
  const res: Results = {
    machine: await machineFacts(),
    blob: { bytes: 0 },
    tag: {},
    tagUpstream: {},
    digest: {},
    cold: emptyColdPulls(),
    coldShaped: [],
    fanout: {},
    errors: [],
  };
  const ws = await Workspace.create('bench');
  workspace = ws;
  try {
    const s = await setUp(ws);
    if (selected('warm')) await phase(res, 'warm peers', () => [s.upstream.daemon], () => measureWarm(ws, s, res));
    if (selected('cold')) await measureColdPulls(ws, s, res, res.cold, s.upstream, 'on loopback');
    if (selected('wan')) for (const shape of LINKS) await measureShapedColdPulls(ws, s, res, shape);
    if (selected('fanout')) await measureFanOut(ws, s, res);
    if (selected('rss')) await measureRss(ws, s, res);
  } catch (err) {
    res.errors.push(`setup: ${errorText(err)}`);
    log(`FAILED setup: ${errorText(err)}`);
  } finally {
    await cleanUp();
  }
  const { text, markdown } = render(res);
  process.stdout.write(text);
  // A partial run (BENCH_ONLY) must not replace the full figures.
  const out = join(REPO_ROOT, 'bench', ONLY === undefined ? 'results.md' : 'results.partial.md');
  await writeFile(out, markdown);
  log(`wrote ${out} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return res.errors.length === 0 ? 0 : 1;
}

process.once('SIGINT', () => void abort('interrupted', 130));
process.once('SIGTERM', () => void abort('terminated', 143));
const deadline = setTimeout(() => void abort(`deadline of ${DEADLINE_MS / 1000} s passed`, 124), DEADLINE_MS);
deadline.unref();

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanUp();
    process.exitCode = 1;
  },
);
