import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { openDatabase } from '../cache/database.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { MetricsAggregator } from './worker-metrics.js';
import { StatusAggregator } from './worker-status.js';
import type { WorkerChoice } from './worker-count.js';

/** Environment a worker finds its part in: its index, every worker's socket, and the secret they share. */
const WORKER_ENV = 'PULLGATE_WORKER';

interface WorkerPlan {
  index: number;
  sockets: string[];
  secret: string;
}

/** Messages between the primary and its workers: a worker has built its services; every worker has, so listen. */
type WorkerMessage = { pullgate: 'built' } | { pullgate: 'listen' };

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

/**
 * The primary of `serve --workers N`: prepares the index once (so no two workers migrate it at once),
 * forks N workers over the same storage and port, lets them listen only once every one has built its
 * services (each clears the temp files of a crash at start, which must not hit another's fill), and
 * forwards SIGTERM/SIGINT. When a worker dies the others are stopped and the primary exits non-zero,
 * for the supervisor (systemd, Kubernetes) to restart the whole: a restarted worker alone would clear
 * temp files that running workers are filling.
 */
export function runPrimary(config: Config, choice: WorkerChoice, logger: Logger): void {
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
  let built = 0;
  let stopping = false;
  const children = Array.from({ length: workers }, (_, index) => cluster.fork({ [WORKER_ENV]: JSON.stringify({ ...plan, index }) }));
  // A scrape that reaches any worker answers with every worker's figures.
  new MetricsAggregator(children);
  // A status page that reaches any worker shows every worker's figures.
  new StatusAggregator(children);
  for (const child of children) {
    child.on('message', (message: unknown) => {
      if (!isWorkerMessage(message) || message.pullgate !== 'built') return;
      built++;
      if (built === workers) for (const each of children) each.send({ pullgate: 'listen' } satisfies WorkerMessage);
    });
  }
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    for (const child of children) if (!child.isDead()) child.process.kill(signal);
  };
  let exitCode = 0;
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      logger.error({ worker: worker.id, code, signal }, 'a worker stopped: stopping the others');
      // A worker that could not start (exit 2: a config or certificate error, said on stderr) gives the
      // primary its code, as one process would have exited; later deaths are 1.
      exitCode = built < workers && typeof code === 'number' && code !== 0 ? code : 1;
      stop('SIGTERM');
    }
    if (children.every((child) => child.isDead())) {
      rmSync(dir, { recursive: true, force: true });
      logger.flush(() => process.exit(exitCode));
    }
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
  logger.info({ workers, workersReason: choice.reason, listen: `${config.listen.host}:${config.listen.port}` }, 'pullgate starting workers');
}
