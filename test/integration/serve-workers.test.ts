import { spawn, type ChildProcess } from 'node:child_process';
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
function serveChild(configFile: string, extraArgs: readonly string[]): { child: ChildProcess; output: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', ...extraArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PULLGATE_CONFIG: '' },
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
