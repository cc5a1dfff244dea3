// `npm run bench`: a small driver over two tables — peers (bench/peers/table.ts: pullgate as `npm start` runs it and
// with --workers 1, nginx, node:http alone, distribution's proxy, the upstream itself) and measures
// (bench/measures/table.ts: warm blob, manifests by tag and digest, cold pulls on loopback and over shaped links,
// fan-out, RSS, index growth). Every selected measure runs
// against the selected peers it applies to, in front of one distribution upstream with token auth on 127.0.0.1;
// the figures, CPU-seconds, ratios and targets go to stdout and bench/results.md (bench/results.partial.md for a
// BENCH_ONLY run). Knobs: see bench/run.sh.
//
// The upstream uses token auth (the e2e token server), not htpasswd: distribution 2.8's proxy mode only uses its
// proxy.username/password for a token exchange and never sends Basic credentials to the upstream itself.
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release } from 'node:os';
import { join } from 'node:path';
import { run } from '../support/proc.js';
import { REPO_ROOT } from '../support/pullgate.js';
import { requireTools } from '../support/tools.js';
import { Workspace } from '../support/workspace.js';
import { drawCharts } from './lib/charts.js';
import { benchConfig } from './lib/config.js';
import { BenchContext, errorText } from './lib/context.js';
import { render } from './lib/render.js';
import type { MeasureReport } from './lib/results.js';
import { selectMeasures } from './lib/selection.js';
import { measureTable } from './measures/table.js';
import { PEERS } from './peers/table.js';
import { PEER_NAMES } from './peers/types.js';

const config = benchConfig();
const t0 = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

async function versionOf(command: string, args: readonly string[]): Promise<string> {
  try {
    const r = await run(command, args, { timeoutMs: 10_000 });
    return `${r.stdout.toString('utf8')}\n${r.stderr}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
  } catch (err) {
    throw new Error(`${command} is missing (${errorText(err)}); run \`bash bench/install-bench-deps.sh\``);
  }
}

async function machineFacts(): Promise<Record<string, string>> {
  const versions: string[] = [];
  for (const name of PEER_NAMES) {
    const peer = PEERS[name];
    if (peer.version !== undefined) versions.push(await peer.version().catch((err: unknown) => `${name}: ${errorText(err)}`));
  }
  versions.push(await versionOf('wrk', ['-v']), await versionOf('skopeo', ['--version']));
  return {
    date: new Date().toISOString(),
    machine: `${availableParallelism()} CPUs (nproc), ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Linux ${release()}`,
    node: process.version,
    peers: versions.join('; '),
    run: `BENCH_REPEAT ${config.repeat}, BENCH_WRK_SECONDS ${config.wrkSeconds}, BENCH_COLD_REPS ${config.coldReps}` +
      (config.only === undefined ? '' : `, BENCH_ONLY ${config.only.join(',')}`) + (config.small ? ', BENCH_SMALL (smoke sizes: figures not comparable)' : ''),
  };
}

// Bounded runtime: every child and the workspace removed on success, failure, deadline or signal. The state lives
// in main()'s closure; the signal handlers reach it through `stop`.
async function main(): Promise<number> {
  requireTools(['docker-registry', 'skopeo', 'openssl']);
  const selection = selectMeasures(config.only, measureTable(config));
  const machine = await machineFacts();
  const ws = await Workspace.create('bench');
  let closing: Promise<void> | undefined;
  const cleanUp = (): Promise<void> => {
    closing ??= ws.close().catch((err: unknown) => log(`cleanup: ${errorText(err)}`));
    return closing;
  };
  const abort = async (reason: string, code: number): Promise<never> => {
    log(`${reason}: stopping every peer`);
    await Promise.race([cleanUp(), new Promise((r) => setTimeout(r, 30_000))]);
    process.exit(code);
  };
  process.once('SIGINT', () => void abort('interrupted', 130));
  process.once('SIGTERM', () => void abort('terminated', 143));
  setTimeout(() => void abort(`deadline of ${config.deadlineMs / 1000} s passed`, 124), config.deadlineMs).unref();

  const reports: MeasureReport[] = [];
  const errors: string[] = [];
  try {
    const ctx = await BenchContext.create(ws, config, selection.measures.some((m) => m.standalone !== true), log);
    for (const measure of selection.measures) {
      const peers = measure.peers.filter((p) => selection.peers.has(p)).map((p) => PEERS[p]);
      if (peers.length === 0) continue;
      log(`=== ${measure.name} (${peers.map((p) => p.label).join(', ')})`);
      try {
        reports.push(await measure.run(ctx, peers));
      } catch (err) {
        ctx.errors.push(`${measure.name}: ${errorText(err)}`);
        log(`FAILED ${measure.name}: ${errorText(err)}`);
      }
    }
    errors.push(...ctx.errors);
  } catch (err) {
    errors.push(`setup: ${errorText(err)}`);
    log(`FAILED setup: ${errorText(err)}`);
  } finally {
    await cleanUp();
  }
  const partial = config.only !== undefined;
  const charts = await drawCharts(join(REPO_ROOT, 'bench'), partial ? 'partial-' : '', reports.flatMap((r) => r.charts), log);
  const { text, markdown } = render(machine, reports, errors, charts);
  process.stdout.write(text);
  // A partial run (BENCH_ONLY) must not replace the full figures.
  const out = join(REPO_ROOT, 'bench', partial ? 'results.partial.md' : 'results.md');
  await writeFile(out, markdown);
  log(`wrote ${out} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
