import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../../support/ports.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { chooseWorkers } from '../../src/cli/worker-count.js';
import { ownerOf } from '../../src/cluster/rendezvous.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Resolves when `count` lines of the child's output contain `text`. */
function linesWith(output: string[], text: string, count: number, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count}× "${text}":\n${output.join('')}`)), 60_000);
    const check = (): void => {
      if (output.join('').split(text).length - 1 >= count) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    check();
  });
}

/**
 * A `pullgate serve` child on `configFile` (killed after the tests), with its stdout and stderr collected. It
 * listens on a port the kernel picks (every worker gets the same one through node:cluster): see listeningPort().
 */
function serveChild(configFile: string, extraArgs: readonly string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', ...extraArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PULLGATE_CONFIG: '', ...env },
  });
  cleanups.push(() => {
    child.kill('SIGKILL');
  });
  const output: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
  return { child, output };
}

/** The port every worker logged in its "pullgate listening" line (one port for all of them, asserted). */
function listeningPort(output: string[]): number {
  const ports = output
    .join('')
    .split('\n')
    .filter((line) => line.includes('pullgate listening'))
    .map((line) => Number(new URL((JSON.parse(line) as { address: string }).address).port));
  expect(ports.length).toBeGreaterThan(0);
  expect(new Set(ports).size).toBe(1);
  return ports[0] ?? 0;
}

/** A GET on a connection of its own (so the primary hands each to a worker in turn): status and body. */
async function getAlone(url: string): Promise<{ status: number; body: Buffer }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const res = await request(url, { dispatcher });
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  } finally {
    await dispatcher.close();
  }
}

/**
 * `serve --workers 2` over a temp storage, in front of a fake registry holding one image whose layer is `layerSize`
 * bytes (config plus `extraYaml`); resolves once both workers listen and are cluster members.
 */
async function twoWorkers(
  layerSize: number,
  extraYaml = '',
): Promise<{ fake: FakeRegistry; digest: string; bytes: Buffer; child: ChildProcess; output: string[]; port: number }> {
  const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
  cleanups.push(() => fake.stop());
  const image = fake.add(makeImage('team/app', '1', 1, layerSize));
  const [digest, bytes] = [...image.blobs.entries()].find(([, b]) => b.length === layerSize) ?? ['', Buffer.alloc(0)];
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-workers-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, 'pullgate.yaml');
  writeFileSync(configFile, `defaultRegistry: reg.example\nregistries: { reg.example: { url: ${fake.origin} } }\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n${extraYaml}`);
  const { child, output } = serveChild(configFile, ['--workers', '2']);
  await linesWith(output, 'pullgate listening', 2, child);
  await linesWith(output, 'cluster membership', 2, child);
  return { fake, digest, bytes, child, output, port: listeningPort(output) };
}

/** SIGTERM to the primary: it stops its workers and exits 0. */
async function expectCleanExit(child: ChildProcess): Promise<void> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
}

describe('pullgate serve --workers', () => {
  it('runs two workers on one port over one storage, and a cold blob is fetched upstream once', { timeout: 120_000 }, async () => {
    const { fake, digest, bytes, child, output, port } = await twoWorkers(8 * MiB);

    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    // Separate connections, so the primary hands them to both workers.
    const agents = Array.from({ length: 8 }, () => new Agent({ pipelining: 0 }));
    cleanups.push(() => Promise.all(agents.map((a) => a.close())).then(() => undefined));
    const clients = agents.map((dispatcher) => request(`http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`, { dispatcher }));
    await Promise.all(clients);
    release();
    const bodies = await Promise.all(clients.map(async (c) => Buffer.from(await (await c).body.arrayBuffer())));
    for (const body of bodies) expect(body.equals(bytes)).toBe(true);
    const clusterLines = output.join('').split('\n').filter((line) => /cluster|blob/.test(line)).join('\n');
    expect(fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`)), clusterLines).toHaveLength(1);
    const served = output.join('').match(/"worker":(\d)/g) ?? [];
    expect(new Set(served).size).toBe(2);

    // /metrics reaches one worker per connection and answers for the host: hits served by both workers
    // add up in every scrape, and the cache size (every worker reads the shared total) is counted once.
    const scrape = async (): Promise<string> => (await getAlone(`http://127.0.0.1:${port}/metrics`)).body.toString('utf8');
    const blobHits = (text: string): number => Number(/^pullgate_cache_hits_total\{kind="blob"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    const before = blobHits(await scrape());
    const hitLines = (): string[] => output.join('').split('\n').filter((line) => line.includes('"source":"cache"') && line.includes(digest));
    const HITS = 10;
    for (let i = 0; i < HITS; i++) expect((await getAlone(`http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`)).body.equals(bytes)).toBe(true);
    await linesWith(output, '"source":"cache"', HITS, child);
    expect(new Set(hitLines().map((line) => /"worker":(\d)/.exec(line)?.[1])).size).toBe(2);
    for (let i = 0; i < 4; i++) {
      const text = await scrape();
      expect(blobHits(text) - before, text).toBe(HITS);
      expect(text).toMatch(new RegExp(`^pullgate_cache_bytes ${8 * MiB}$`, 'm'));
    }

    await expectCleanExit(child);
  });
  it('serves metrics.listen from every worker on one port, each scrape answering for the host', { timeout: 120_000 }, async () => {
    // metrics.listen needs a port known before the start (its listening line names the configured one).
    const metricsPort = await freePort();
    const { fake, digest, bytes, child, output, port } = await twoWorkers(MiB, `metrics: { listen: "127.0.0.1:${metricsPort}" }\n`);
    const blobUrl = `http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`;
    const scrape = async (): Promise<string> => {
      const answer = await getAlone(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(answer.status).toBe(200);
      return answer.body.toString('utf8');
    };
    const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? -1);
    expect((await getAlone(blobUrl)).body.equals(bytes)).toBe(true);
    // The client can have its last byte before the fill is indexed: wait (bounded) until the host counts it.
    for (let i = 0; metric(await scrape(), 'pullgate_cache_bytes') !== MiB; i++) {
      if (i > 200) throw new Error('the fill was never indexed');
    }
    const HITS = 12;
    for (let i = 0; i < HITS; i++) expect((await getAlone(blobUrl)).body.equals(bytes)).toBe(true);
    await linesWith(output, '"source":"cache"', HITS, child);
    const hitLines = output.join('').split('\n').filter((line) => line.includes('"source":"cache"'));
    expect(new Set(hitLines.map((line) => /"worker":(\d)/.exec(line)?.[1])).size).toBe(2);
    // Every scrape, whichever worker takes it, answers for the host: the hits of both workers add up.
    for (let i = 0; i < 4; i++) {
      const text = await scrape();
      expect(metric(text, 'pullgate_cache_hits_total\\{kind="blob"\\}'), text).toBe(HITS);
      expect(metric(text, 'pullgate_cache_bytes'), text).toBe(MiB);
    }
    // The main port no longer serves /metrics once it has a listener of its own.
    expect((await getAlone(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    expect(fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`))).toHaveLength(1);

    await expectCleanExit(child);
  });
  it('replaces a worker killed with SIGKILL during pulls: the other worker\'s pulls complete and /v2/ never stops answering', { timeout: 120_000 }, async () => {
    const { fake, digest, bytes, child, output, port } = await twoWorkers(8 * MiB);
    const lines = (): { worker?: number; pid?: number; self?: string; msg?: string; path?: string; status?: number; aborted?: boolean; restartInMs?: number }[] =>
      output
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { worker?: number; pid?: number; self?: string; msg?: string; path?: string; status?: number; aborted?: boolean; restartInMs?: number });
    // Kill the worker that does not own the layer: its followers stream from the owner, the owner's pulls from upstream.
    const members = lines().filter((line) => line.msg === 'cluster listener for peers');
    const owner = members.find((line) => line.self === ownerOf(digest, members.map((m) => m.self ?? '')))?.worker;
    const victim = lines().find((line) => line.msg === 'pullgate listening' && line.worker !== owner);
    expect(owner).toBeDefined();
    expect(victim?.pid).toBeGreaterThan(0);

    // /v2/ on a fresh connection every 20 ms from now until the replacement listens. A connection the primary
    // handed to the victim just before it died is lost with it (node:cluster cannot take it back), as its pulls
    // are; every connection opened once the primary knows of the death must be answered.
    const probe = async (): Promise<{ startedAt: number; status: number; error?: string }> => {
      const startedAt = Date.now();
      const dispatcher = new Agent({ pipelining: 0, headersTimeout: 5_000, bodyTimeout: 5_000 });
      try {
        const res = await request(`http://127.0.0.1:${port}/v2/`, { dispatcher });
        await res.body.dump();
        return { startedAt, status: res.statusCode };
      } catch (err) {
        return { startedAt, status: 0, error: String(err) };
      } finally {
        await dispatcher.destroy();
      }
    };
    // One probe every 25 ms, each on its own (a lost one does not hold up the next).
    const probing: Promise<{ startedAt: number; status: number; error?: string }>[] = [];
    const prober = setInterval(() => probing.push(probe()), 25);
    cleanups.push(() => clearInterval(prober));

    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const agents = Array.from({ length: 8 }, () => new Agent({ pipelining: 0 }));
    cleanups.push(() => Promise.all(agents.map((a) => a.close().catch(() => undefined))).then(() => undefined));
    // Every pull has its headers and the first 64 KiB before the kill (the fake holds the rest).
    const pulls = await Promise.all(agents.map((dispatcher) => request(`http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`, { dispatcher })));
    // Settled as they end (the killed worker's fail while this test waits for its replacement).
    const bodies = pulls.map((pull) =>
      pull.body.arrayBuffer().then(
        (body) => ({ status: 'fulfilled' as const, value: Buffer.from(body) }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
    );
    process.kill(victim?.pid ?? 0, 'SIGKILL');
    const killedAt = Date.now();
    await linesWith(output, 'a worker died: starting a replacement', 1, child);
    const deathKnownAt = Date.now();
    expect(lines().find((line) => line.msg?.startsWith('a worker died') === true)).toMatchObject({ worker: victim?.worker, restartInMs: 0 });
    release();
    const results = await Promise.all(bodies);
    const whole = results.flatMap((r) => (r.status === 'fulfilled' ? [r] : []));
    // A pull never ends with a body that is not the blob: it is whole or it fails.
    for (const body of whole) expect(body.value.equals(bytes)).toBe(true);
    // The owner's pulls complete: every whole body is one of its access-log lines (the victim's were cut).
    const ownerServed = (): number => lines().filter((line) => line.worker === owner && line.path?.includes(digest) === true && line.status === 200 && line.aborted === false).length;
    for (const deadline = Date.now() + 5_000; ownerServed() < whole.length && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(whole.length).toBeGreaterThan(0);
    expect(ownerServed()).toBe(whole.length);
    console.log(`serve-workers: ${whole.length} of ${results.length} pulls were on the surviving worker and completed; the killed worker's ${results.length - whole.length} failed`);

    // A new worker with the same index (and so the same digests) listens within seconds, as a cluster member again.
    await linesWith(output, 'pullgate listening', 3, child);
    const replacement = lines().filter((line) => line.msg === 'pullgate listening' && line.worker === victim?.worker);
    expect(replacement).toHaveLength(2);
    expect(replacement[1]?.pid).not.toBe(victim?.pid);
    const replacedInMs = Date.now() - killedAt;
    clearInterval(prober);
    const probes = await Promise.all(probing);
    const after = probes.filter((probe) => probe.startedAt >= deathKnownAt);
    const lost = probes.filter((probe) => probe.startedAt < deathKnownAt && probe.status !== 200);
    console.log(
      `serve-workers: the killed worker listened again ${replacedInMs} ms after the kill (the primary knew of it after ${deathKnownAt - killedAt} ms); ` +
        `/v2/ answered ${after.length} probes opened meanwhile; ${lost.length} probe(s) in flight to the victim at the kill were lost with it`,
    );
    // The replacement is forked at once; it listens once tsx has compiled and its services are built (seconds).
    expect(replacedInMs).toBeLessThan(30_000);
    expect(after.length).toBeGreaterThan(5);
    expect(after.filter((probe) => probe.status !== 200).map((probe) => ({ ...probe, startedAt: probe.startedAt - killedAt }))).toEqual([]);
    // Lost: only connections the primary handed to the victim before it knew of the death (node:cluster cannot
    // take those back); the surviving worker took its share of the same window, so at most about half are lost.
    const window = probes.filter((probe) => probe.startedAt < deathKnownAt && probe.startedAt >= killedAt - 1_000);
    for (const probe of lost) expect(probe.startedAt).toBeGreaterThanOrEqual(killedAt - 1_000);
    expect(lost.length).toBeLessThanOrEqual(Math.ceil(window.length / 2) + 1);

    // Both workers serve again, the layer from the cache, and the host counts the restart.
    for (let i = 0; i < 6; i++) expect((await getAlone(`http://127.0.0.1:${port}/v2/team/app/blobs/${digest}`)).body.equals(bytes)).toBe(true);
    const metrics = (await getAlone(`http://127.0.0.1:${port}/metrics`)).body.toString('utf8');
    expect(metrics).toMatch(/^pullgate_worker_restarts_total 1$/m);
    await expectCleanExit(child);
  });
  it('asks for each token once for the host: one token request per scope and one ECR GetAuthorizationToken for three pulls over two workers', { timeout: 120_000 }, async () => {
    const clock = new FakeClock();
    const bearer = await new FakeRegistry({ kind: 'bearer', users: {}, anonymous: true, expiresIn: 300, crossScope403: false }, clock).start();
    cleanups.push(() => bearer.stop());
    bearer.add(makeImage('team/new', '1', 1, 1024));
    const ecrRegistry = await new FakeRegistry({ kind: 'basic', username: 'AWS', password: 'ecr-pw' }, clock).start();
    cleanups.push(() => ecrRegistry.stop());
    ecrRegistry.add(makeImage('team/app', '1', 1, 1024));
    // The ECR API (AWS_ENDPOINT_URL_ECR): counts GetAuthorizationToken calls.
    const ecrCalls: string[] = [];
    const ecrApi = createServer((req: IncomingMessage, res) => {
      req.resume();
      req.on('end', () => {
        ecrCalls.push(String(req.headers['x-amz-target']));
        const text = JSON.stringify({ authorizationData: [{ authorizationToken: Buffer.from('AWS:ecr-pw').toString('base64'), expiresAt: (Date.now() + 12 * 3_600_000) / 1000, proxyEndpoint: 'https://x' }] });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => ecrApi.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => ecrApi.close(() => resolve())));
    const ecrHost = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-workers-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = path.join(dir, 'pullgate.yaml');
    writeFileSync(
      configFile,
      `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${bearer.origin} }\n  ${ecrHost}: { url: ${ecrRegistry.origin}, auth: { type: ecr } }\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n`,
    );
    const { child, output } = serveChild(configFile, ['--workers', '2'], {
      AWS_ENDPOINT_URL_ECR: `http://127.0.0.1:${(ecrApi.address() as AddressInfo).port}`,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'dummy-secret-key',
      AWS_REGION: 'eu-west-1',
    });
    await linesWith(output, 'pullgate listening', 2, child);
    const port = listeningPort(output);
    const accept = 'application/vnd.oci.image.manifest.v1+json';
    // Three pulls at once, each on a connection of its own (the primary hands them to both workers).
    const pull = async (url: string): Promise<number> => {
      const dispatcher = new Agent({ pipelining: 0 });
      try {
        const res = await request(url, { dispatcher, headers: { accept } });
        await res.body.dump();
        return res.statusCode;
      } finally {
        await dispatcher.close();
      }
    };
    expect(await Promise.all([1, 2, 3].map(() => pull(`http://127.0.0.1:${port}/v2/team/new/manifests/1`)))).toEqual([200, 200, 200]);
    expect(await Promise.all([1, 2, 3].map(() => pull(`http://127.0.0.1:${port}/v2/${ecrHost}/team/app/manifests/1`)))).toEqual([200, 200, 200]);
    await linesWith(output, '"status":200', 6, child);
    const served = output.join('').split('\n').filter((line) => line.includes('/manifests/1') && line.includes('"status":200'));
    const servedBy = new Set(served.map((line) => /"worker":(\d)/.exec(line)?.[1]));
    if (servedBy.size < 2) console.log('serve-workers: every pull landed on one worker this time: the count below does not show the sharing');
    const scopeRequests = bearer.tokenRequests().filter((seen) => seen.path === '/token');
    console.log(`serve-workers: 3 pulls of a new repository over ${servedBy.size} worker(s): ${scopeRequests.length} token request(s); 3 ECR pulls: ${ecrCalls.length} GetAuthorizationToken call(s)`);
    expect(servedBy.size).toBe(2);
    expect(scopeRequests).toHaveLength(1);
    expect(ecrCalls).toHaveLength(1);
    expect(ecrCalls[0]).toMatch(/GetAuthorizationToken/);
    expect(output.join('')).not.toMatch(/ecr-pw|dummy-secret-key/);
    await expectCleanExit(child);
  });
  it('runs one worker per core by default, says so, and a kill -9 of the primary takes the workers down', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-workers-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = path.join(dir, 'pullgate.yaml');
    writeFileSync(configFile, `defaultRegistry: reg.example\nregistries: { reg.example: { url: http://127.0.0.1:9 } }\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n`);
    // The default is what this machine's cores (and cgroup limit) say; on one core that is a single process, so force two.
    const cores = chooseWorkers(undefined, { cluster: undefined, storage: { path: dir, maxSizeBytes: 1, s3: undefined } }).workers;
    const args = cores >= 2 ? [] : ['--workers', '2'];
    if (cores < 2) console.log(`serve-workers: this machine has ${cores} usable core(s): the default is one process here, so the kill -9 check forces --workers 2`);
    const { child, output } = serveChild(configFile, args);
    await linesWith(output, 'pullgate starting workers', 1, child);
    const start = JSON.parse(output.join('').split('\n').find((line) => line.includes('pullgate starting workers')) ?? '{}') as { workers?: number; workersReason?: string };
    const workers = start.workers ?? 0;
    expect(workers).toBeGreaterThanOrEqual(2);
    expect(start.workersReason).toMatch(cores >= 2 ? /^one per usable core: / : /^forced by --workers$/);
    await linesWith(output, 'pullgate listening', workers, child);
    const pids = output
      .join('')
      .split('\n')
      .filter((line) => line.includes('pullgate listening'))
      .map((line) => (JSON.parse(line) as { pid: number }).pid);
    expect(new Set(pids).size).toBe(workers);
    expect(pids).not.toContain(child.pid);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pids.every(alive)).toBe(true);
    child.kill('SIGKILL');
    // Workers of node:cluster exit when the channel to their primary closes; wait (bounded) until every one is gone.
    const deadline = Date.now() + 20_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pids.filter(alive)).toEqual([]);
  });
});
