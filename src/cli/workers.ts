import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import { openDatabase } from '../storage/database.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../core/errors.js';
import { MetricsAggregator } from './worker-metrics.js';
import { StatusAggregator } from './worker-status.js';
import type { WorkerChoice } from './worker-count.js';
import { RestartBackoff } from './restart-backoff.js';
import { TokenBroker } from './worker-tokens.js';
import { systemClock } from '../core/clock.js';
import { workerExecArgv } from '../core/runtime-flags.js';

/** Environment a worker finds its part in: its index, every worker's socket, and the secret they share. */
const WORKER_ENV = 'PULLGATE_WORKER';

interface WorkerPlan {
  index: number;
  sockets: string[];
  secret: string;
  /** True for a worker started in place of one that died: the other workers' fills are running, so it keeps the temp files. */
  replacement?: boolean;
}

/** Messages between the primary and its workers: a worker has built its services; every worker has, so listen; a worker listens. */
type WorkerMessage = { pullgate: 'built' } | { pullgate: 'listen' } | { pullgate: 'listening' };

function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && 'pullgate' in value;
}

/** The plan of this process when it is a worker of `serve --workers`, else undefined. */
export function workerPlan(env: NodeJS.ProcessEnv): WorkerPlan | undefined {
  if (!cluster.isWorker) return undefined;
  const text = env[WORKER_ENV];
  if (text === undefined) return undefined;
  return JSON.parse(text) as WorkerPlan;
}

/**
 * A worker's config: its own config plus a cluster of the workers on this host, over unix sockets, so
 * that each digest is filled by one worker and the others follow it (the cluster's owner mechanism).
 */
export function workerConfig(config: Config, plan: WorkerPlan): Config {
  if (config.cluster !== undefined) {
    throw new ConfigError('serve --workers cannot be combined with cluster: in the config yet; run one process per host (or per pod) in a cluster');
  }
  const self = plan.sockets[plan.index];
  if (self === undefined) throw new Error(`worker ${plan.index} has no socket`);
  return {
    ...config,
    cluster: {
      listen: { host: '127.0.0.1', port: 0 },
      peers: plan.sockets.map((socket) => ({ kind: 'static', address: `unix:${socket}` })),
      secret: plan.secret,
      self: `unix:${self}`,
    },
  };
}

/** In a worker: tells the primary its services are built (temp files cleared, index open) and waits for the word to listen. */
export function builtAndWaitForListen(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!isWorkerMessage(message) || message.pullgate !== 'listen') return;
      process.removeListener('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    process.send?.({ pullgate: 'built' } satisfies WorkerMessage);
  });
}

/** In a worker: tells the primary this worker listens (the primary says so once every worker does). */
export function tellPrimaryListening(): void {
  process.send?.({ pullgate: 'listening' } satisfies WorkerMessage);
}

/** The primary's own figures, added to the workers' at every scrape. */
function primaryMetrics(): { registry: Registry; restarts: Counter } {
  const registry = new Registry();
  const restarts = new Counter({ name: 'pullgate_worker_restarts_total', help: 'Workers of serve --workers that died and were started again', registers: [registry] });
  return { registry, restarts };
}

/**
 * The primary of `serve --workers N`: prepares the index once (so no two workers migrate it at once),
 * forks N workers over the same storage and port, lets them listen only once every one has built its
 * services (each clears the temp files of a crash at start, which must not hit another's fill), and
 * forwards SIGTERM/SIGINT. A worker that dies once all have started is replaced under the same index
 * (so it owns the same digests), after a back-off when it keeps dying, while the others go on serving;
 * the replacement keeps the temp files of the running workers' fills. A worker that cannot start at
 * all (a config or certificate error) stops the others, and the primary exits with its code.
 * `onListening` runs once, when every first worker listens.
 */
export function runPrimary(config: Config, choice: WorkerChoice, logger: Logger, onListening: () => void = () => undefined): void {
  const workers = choice.workers;
  if (config.cluster !== undefined) {
    throw new ConfigError('serve --workers cannot be combined with cluster: in the config yet; run one process per host (or per pod) in a cluster');
  }
  try {
    mkdirSync(config.storage.path, { recursive: true });
    openDatabase(path.join(config.storage.path, 'index.db')).close();
  } catch (err) {
    // Workers find out for themselves and pass through (/readyz 503); nothing to prepare.
    logger.warn({ storage: config.storage.path, err: err instanceof Error ? err.message : String(err) }, 'could not prepare the index before starting workers');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-workers-'));
  const plan = { sockets: Array.from({ length: workers }, (_, i) => path.join(dir, `worker-${i}.sock`)), secret: randomBytes(32).toString('hex') };
  const own = primaryMetrics();
  // A scrape that reaches any worker answers with every worker's figures (and the primary's).
  const aggregator = new MetricsAggregator([], own.registry);
  // Every token is fetched by one worker and shared with the others (see worker-tokens.ts).
  const tokens = new TokenBroker(systemClock);
  // A status page that reaches any worker shows every worker's figures.
  const status = new StatusAggregator();
  const backoff = new RestartBackoff();
  /** The live (or starting) worker at each index, when it started, and the replacements waiting for their back-off. */
  const current = new Map<number, { worker: Worker; startedAt: number }>();
  const pendingRestarts = new Set<NodeJS.Timeout>();
  let built = 0;
  let listening = 0;
  let allStarted = false;
  let stopping = false;
  let exitCode = 0;

  const fork = (index: number, replacement: boolean): void => {
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify({ ...plan, index, replacement } satisfies WorkerPlan) });
    current.set(index, { worker, startedAt: Date.now() });
    aggregator.add(worker);
    tokens.add(worker);
    status.add(worker);
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return;
      if (message.pullgate === 'listening') {
        listening++;
        if (listening === workers) onListening();
        return;
      }
      if (message.pullgate !== 'built') return;
      // A replacement listens at once; the first workers wait until every one has built its services.
      if (allStarted) {
        worker.send({ pullgate: 'listen' } satisfies WorkerMessage);
        return;
      }
      built++;
      if (built < workers) return;
      allStarted = true;
      for (const each of current.values()) each.worker.send({ pullgate: 'listen' } satisfies WorkerMessage);
    });
    worker.on('exit', (code, signal) => onExit(index, worker, code, signal));
  };
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    for (const timer of pendingRestarts) clearTimeout(timer);
    pendingRestarts.clear();
    for (const { worker } of current.values()) if (!worker.isDead()) worker.process.kill(signal);
    exitIfAllDead();
  };
  const exitIfAllDead = (): void => {
    if (!stopping || [...current.values()].some(({ worker }) => !worker.isDead())) return;
    rmSync(dir, { recursive: true, force: true });
    logger.flush(() => process.exit(exitCode));
  };
  const onExit = (index: number, worker: Worker, code: number | null, signal: string | null): void => {
    const entry = current.get(index);
    if (entry?.worker !== worker) return;
    if (!stopping && !allStarted) {
      logger.error({ worker: index, code, signal }, 'a worker stopped before every worker started: stopping the others');
      // A worker that could not start (exit 2: a config or certificate error, said on stderr) gives the
      // primary its code, as one process would have exited.
      exitCode = typeof code === 'number' && code !== 0 ? code : 1;
      stop('SIGTERM');
      return;
    }
    if (stopping) {
      exitIfAllDead();
      return;
    }
    const delayMs = backoff.delayAfterDeath(index, Date.now() - entry.startedAt);
    own.restarts.inc();
    logger.error({ worker: index, pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'a worker died: starting a replacement while the others serve');
    // Its unix socket outlived it; the replacement listens on the same path.
    rmSync(plan.sockets[index] ?? '', { force: true });
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      if (!stopping) fork(index, true);
    }, delayMs);
    pendingRestarts.add(timer);
  };

  // Workers get the V8 settings however the primary was started (`node dist/cli.js serve` has none).
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  for (let index = 0; index < workers; index++) fork(index, false);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
  logger.info({ workers, workersReason: choice.reason, listen: `${config.listen.host}:${config.listen.port}` }, 'pullgate starting workers');
}
