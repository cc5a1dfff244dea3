// Manifest hits during a long eviction pass (issue 14 §4): pullgate over a synthetic index whose least recently
// used layers are on disk, with storage.maxSize set so that one more blob makes it evict EVICTED of them; wrk asks
// for manifests by random tag while the pass runs, and its 99th percentile is compared with a run without eviction.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../support/ports.js';
import { startDaemon } from '../../support/proc.js';
import { PULLGATE_CLI, nodeArgs, startFlags } from '../../support/pullgate.js';
import { waitForHttp } from '../../support/wait.js';
import { ACCEPT } from '../lib/constants.js';
import type { BenchContext } from '../lib/context.js';
import { expectBody } from '../lib/probes.js';
import { fmt } from '../lib/report.js';
import { type MeasureReport, emptyReport } from '../lib/results.js';
import { type SyntheticIndex, generateSyntheticIndex } from '../lib/synthetic-index.js';
import { runWrk, wrkErrors } from '../lib/wrk.js';
import { tagScript } from './growth.js';
import type { Measure } from './types.js';

const REGISTRY = 'eviction.bench.invalid';
/**
 * Clients asking for manifests meanwhile: a steady load rather than saturation, so the p99 shows what a pass
 * adds to a request's wait and not the queue of 32 connections on one event loop (p99 over 200 ms with or
 * without a pass on a shared 2-core machine).
 */
const CONNECTIONS = 8;
/** The p99 target of manifest hits during the pass. */
const TARGET_P99_MS = 20;

/** wrk --latency's 99th percentile, in ms. */
function p99Ms(raw: string): number {
  const m = /^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(raw);
  if (m === null) throw new Error(`wrk: no 99% latency in its output:\n${raw}`);
  const scale = { us: 1e-3, ms: 1, s: 1e3 }[m[2] as 'us' | 'ms' | 's'];
  return Number(m[1]) * scale;
}

/** An upstream that serves one blob to anyone (the blob whose fill starts the pass). */
async function triggerUpstream(bytes: Buffer): Promise<{ url: string; digest: string; close: () => Promise<void> }> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/v2/' || req.url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else if (req.url?.endsWith(`/blobs/${digest}`) === true) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'docker-content-digest': digest });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, digest, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Outcome {
  rows: number;
  evicted: number;
  passSeconds: number | undefined;
  windowSeconds: number;
  baselineP99: number;
  duringP99: number;
  errors: number;
}

async function measure(ctx: BenchContext, rows: number, evict: number): Promise<Outcome> {
  const name = 'eviction';
  const root = await ctx.ws.mkdir(name, 'data');
  const index: SyntheticIndex = generateSyntheticIndex(root, { rows, registry: REGISTRY, now: Date.now(), layerFiles: evict });
  ctx.log(`${name}: ${fmt(rows)} rows, ${fmt(evict)} of them on disk, generated in ${index.seconds.toFixed(1)} s`);
  const trigger = Buffer.alloc(1_000, 0x21);
  const upstream = await triggerUpstream(trigger);
  ctx.ws.defer(upstream.close);
  // One more blob puts the cache over budget by `evict` layers.
  const maxSize = index.totalBytes - index.oldestLayerBytes(evict);
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const configPath = ctx.ws.path(name, 'pullgate.yaml');
  await writeFile(
    configPath,
    [
      `listen: "${listen}"`,
      `storage: { path: ${JSON.stringify(root)}, maxSize: "${maxSize}" }`,
      `defaultRegistry: "${REGISTRY}"`,
      'registries:',
      `  "${REGISTRY}": { url: "${upstream.url}", auth: { type: anonymous } }`,
      'cache: { tagTTL: "24h" }',
      '',
    ].join('\n'),
  );
  const logPath = ctx.ws.path(`${name}.log`);
  const daemon = startDaemon({ name: 'pullgate (eviction)', command: process.execPath, args: [...startFlags(), ...nodeArgs(), PULLGATE_CLI, 'serve', '--config', configPath, '--workers', '1'], logPath, cwd: ctx.ws.path(name) });
  ctx.ws.defer(() => daemon.stop());
  const url = `http://${listen}`;
  await waitForHttp(`${url}/readyz`, 200, { what: 'pullgate (eviction) /readyz', abortIf: () => daemon.assertRunning(), describe: () => daemon.logTail() });
  await expectBody(`${url}${index.tagPath(0)}`, index.firstTagDigest, { accept: ACCEPT });
  const script = join(ctx.ws.path(name), 'random-tag.lua');
  await writeFile(script, tagScript(index));
  const wrk = (durationS: number): ReturnType<typeof runWrk> =>
    runWrk(`${url}/v2/`, { threads: 1, connections: CONNECTIONS, durationS, headers: [`Accept: ${ACCEPT}`], script, latency: true });
  const baseline = await wrk(ctx.config.wrkSeconds);
  const started = Date.now();
  const during = wrk(2);
  await expectBody(`${url}/v2/growth/r0/blobs/${upstream.digest}`, upstream.digest);
  const result = await during;
  const windowSeconds = result.seconds;
  // The pass logs its end; wait for it (it may outlast wrk's window).
  let passSeconds: number | undefined;
  let evicted = 0;
  for (let waited = 0; waited < 120_000 && passSeconds === undefined; waited += 200) {
    for (const line of (await readFile(logPath, 'utf8')).split('\n')) {
      if (!line.includes('evicted least recently used blobs')) continue;
      const entry = JSON.parse(line) as { time: number; evicted: number };
      passSeconds = (entry.time - started) / 1000;
      evicted = entry.evicted;
    }
    if (passSeconds === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await daemon.stop();
  return { rows, evicted, passSeconds, windowSeconds, baselineP99: p99Ms(baseline.raw), duringP99: p99Ms(result.raw), errors: wrkErrors(baseline) + wrkErrors(result) };
}

export const evictionMeasure: Measure = {
  name: 'eviction',
  group: 'growth',
  peers: ['pullgate'],
  standalone: true,
  async run(ctx, peers): Promise<MeasureReport> {
    const report = emptyReport();
    if (peers.length === 0) return report;
    const rows = ctx.config.small ? 20_000 : 200_000;
    const evict = ctx.config.small ? 10_000 : 100_000;
    let outcome: Outcome | undefined;
    await ctx.phase(`eviction: a pass over ${fmt(evict)} blobs under manifest hits`, () => [], async () => {
      outcome = await measure(ctx, rows, evict);
    });
    if (outcome === undefined) return report;
    const o = outcome;
    const covered = o.passSeconds !== undefined && o.passSeconds >= o.windowSeconds;
    report.tables.push({
      title: 'Manifest hits during an eviction pass',
      table: {
        header: ['Index rows', 'Evicted', 'Pass, s', 'p99 without eviction, ms', 'p99 during the pass, ms', 'Errors'],
        rows: [[fmt(o.rows), fmt(o.evicted), o.passSeconds === undefined ? 'not seen' : o.passSeconds.toFixed(2), fmt(o.baselineP99, 2), fmt(o.duringP99, 2), fmt(o.errors)]],
      },
    });
    report.notes.push(
      `Eviction: storage.maxSize set so that one 1 kB blob fetched from a local upstream makes pullgate evict the ${fmt(o.evicted)} least recently used of ${fmt(o.rows)} ` +
        `synthetic rows (files of 1–10 kB on disk), while wrk -t1 -c${CONNECTIONS} asks for manifests by random tag for ${o.windowSeconds.toFixed(1)} s from the moment the blob is asked for; ` +
        `the baseline is a ${ctx.config.wrkSeconds} s run just before. ${covered ? 'The pass outlasted the window, so every request of the window ran during it.' : 'The pass ended within the window: the p99 mixes requests during and after it.'}`,
    );
    report.targets.push({
      issue: 14,
      target: `p99 of manifest hits ≤ ${TARGET_P99_MS} ms while ${fmt(evict)} blobs are evicted`,
      measured: `${fmt(o.duringP99, 2)} ms (without eviction ${fmt(o.baselineP99, 2)} ms; pass ${o.passSeconds?.toFixed(2) ?? '?'} s)`,
      met: o.errors === 0 && o.evicted >= evict ? o.duringP99 <= TARGET_P99_MS : false,
    });
    return report;
  },
};
