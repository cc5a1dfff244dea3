import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** Prometheus text as /metrics answers it. */
export interface MetricsText {
  contentType: string;
  body: string;
}

/** How long a worker waits for the host's metrics, and the primary for each worker's registry. */
const ASK_TIMEOUT_MS = 10_000;
const COLLECT_TIMEOUT_MS = 5_000;

/**
 * The IPC messages of /metrics under `serve --workers`: a worker asks the primary for the host's figures
 * (`ask`); the primary asks every worker for its registry (`collect`, answered by `own`), sums them and
 * answers the worker that asked (`text`).
 */
type MetricsMessage =
  | { pullgate: 'metrics-ask'; id: number }
  | { pullgate: 'metrics-collect'; id: number }
  | { pullgate: 'metrics-own'; id: number; metrics: object[] }
  | { pullgate: 'metrics-text'; id: number; text?: MetricsText; error?: string };

function isMetricsMessage(value: unknown): value is MetricsMessage {
  if (typeof value !== 'object' || value === null || !('pullgate' in value) || !('id' in value)) return false;
  return typeof value.pullgate === 'string' && value.pullgate.startsWith('metrics-') && typeof value.id === 'number';
}

/** The IPC channel of a worker process to its primary (process.send / process.on('message')). */
export interface PrimaryChannel {
  send(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): void;
  off(event: 'message', listener: (message: unknown) => void): void;
}

/** The process's own channel to the primary (a worker of node:cluster). */
export function processChannel(): PrimaryChannel {
  return {
    send: (message) => process.send?.(message),
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
  };
}

/**
 * A worker's side of /metrics: answers the primary's collections with this worker's registry, and answers
 * a scrape that reached this worker with the host's figures (every worker's counters summed by the primary),
 * so Prometheus sees one host whichever worker the connection landed on.
 */
export class WorkerMetrics {
  private asked = 0;
  private readonly waiting = new Map<number, { resolve: (text: MetricsText) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly onMessage = (message: unknown): void => {
    if (!isMetricsMessage(message)) return;
    if (message.pullgate === 'metrics-collect') {
      const id = message.id;
      void this.registry.getMetricsAsJSON().then(
        (metrics) => this.channel.send({ pullgate: 'metrics-own', id, metrics } satisfies MetricsMessage),
        () => this.channel.send({ pullgate: 'metrics-own', id, metrics: [] } satisfies MetricsMessage),
      );
    } else if (message.pullgate === 'metrics-text') {
      const waiter = this.waiting.get(message.id);
      if (waiter === undefined) return;
      this.waiting.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.text !== undefined) waiter.resolve(message.text);
      else waiter.reject(new Error(`metrics of the other workers: ${message.error ?? 'no answer'}`));
    }
  };

  constructor(
    private readonly registry: Registry,
    private readonly channel: PrimaryChannel = processChannel(),
  ) {
    channel.on('message', this.onMessage);
  }

  /** The host's metrics, from the primary. */
  text(): Promise<MetricsText> {
    const id = this.asked++;
    return new Promise<MetricsText>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('metrics of the other workers: the primary did not answer'));
      }, ASK_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, { resolve, reject, timer });
      this.channel.send({ pullgate: 'metrics-ask', id } satisfies MetricsMessage);
    });
  }

  /** Stops answering the primary. */
  close(): void {
    this.channel.off('message', this.onMessage);
    for (const waiter of this.waiting.values()) clearTimeout(waiter.timer);
    this.waiting.clear();
  }
}

/**
 * The primary's side: when a worker asks, collects every live worker's registry, aggregates them with
 * prom-client's AggregatorRegistry (counters and histograms summed, each gauge by its `aggregator`) and
 * answers the worker that asked. Concurrent asks each run their own collection.
 */
export class MetricsAggregator {
  private collections = 0;
  /** Collections in progress: the parts received and the workers still to answer. */
  private readonly pending = new Map<number, { parts: object[][]; waitingFor: Set<Worker>; done: (parts: object[][] | undefined) => void }>();

  private readonly workers: Worker[] = [];

  /** `own`: the primary's own registry (worker restarts), added to every aggregate. */
  constructor(
    workers: readonly Worker[],
    private readonly own?: Registry,
  ) {
    for (const worker of workers) this.add(worker);
  }

  /** Collects from `worker` too (a worker started, or started in place of one that died). */
  add(worker: Worker): void {
    this.workers.push(worker);
    worker.on('message', (message: unknown) => this.onMessage(worker, message));
    worker.once('exit', () => {
      this.workers.splice(this.workers.indexOf(worker), 1);
      // A worker that died is not waited for: the scrape answers with the others' figures.
      for (const collection of [...this.pending.values()]) this.answered(collection, worker);
    });
  }

  private answered(collection: { waitingFor: Set<Worker>; parts: object[][]; done: (parts: object[][] | undefined) => void }, worker: Worker): void {
    if (!collection.waitingFor.delete(worker)) return;
    if (collection.waitingFor.size === 0) collection.done(collection.parts);
  }

  private onMessage(from: Worker, message: unknown): void {
    if (!isMetricsMessage(message)) return;
    if (message.pullgate === 'metrics-ask') {
      const asked = message.id;
      void this.collect().then(
        (text) => {
          if (from.isConnected()) from.send({ pullgate: 'metrics-text', id: asked, text } satisfies MetricsMessage);
        },
        (err: unknown) => {
          if (from.isConnected()) from.send({ pullgate: 'metrics-text', id: asked, error: err instanceof Error ? err.message : String(err) } satisfies MetricsMessage);
        },
      );
    } else if (message.pullgate === 'metrics-own') {
      const collection = this.pending.get(message.id);
      if (collection === undefined) return;
      collection.parts.push(message.metrics);
      this.answered(collection, from);
    }
  }

  /** Every live worker's registry, aggregated into Prometheus text. */
  async collect(): Promise<MetricsText> {
    const id = this.collections++;
    const live = this.workers.filter((worker) => worker.isConnected());
    const parts = await new Promise<object[][] | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), COLLECT_TIMEOUT_MS);
      timer.unref();
      const done = (result: object[][] | undefined): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(result);
      };
      this.pending.set(id, { parts: [], waitingFor: new Set(live), done });
      if (live.length === 0) done([]);
      for (const worker of live) worker.send({ pullgate: 'metrics-collect', id } satisfies MetricsMessage);
    });
    if (parts === undefined) throw new Error(`a worker did not send its metrics within ${COLLECT_TIMEOUT_MS / 1000} s`);
    if (this.own !== undefined) parts.push(await this.own.getMetricsAsJSON());
    const registry = AggregatorRegistry.aggregate(parts);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }
}
