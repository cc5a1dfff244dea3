import type { Worker } from 'node:cluster';
import type { GatherParts } from '../status/collector.js';
import type { ProcessFacts } from '../status/status-report.js';
import { processChannel, type PrimaryChannel } from './worker-metrics.js';

/** How long a worker waits for the host's facts, and the primary for each worker's. */
const ASK_TIMEOUT_MS = 5_000;
const COLLECT_TIMEOUT_MS = 3_000;

/**
 * The IPC messages of the status page under `serve --workers`: a worker asks the primary (`ask`); the
 * primary asks every worker for its own facts (`collect`, answered by `own`) and answers the worker
 * that asked with all of them (`parts`).
 */
type StatusMessage =
  | { pullgate: 'status-ask'; id: number }
  | { pullgate: 'status-collect'; id: number }
  | { pullgate: 'status-own'; id: number; facts: ProcessFacts }
  | { pullgate: 'status-parts'; id: number; parts: ProcessFacts[] };

function isStatusMessage(value: unknown): value is StatusMessage {
  if (typeof value !== 'object' || value === null || !('pullgate' in value) || !('id' in value)) return false;
  return typeof value.pullgate === 'string' && value.pullgate.startsWith('status-') && typeof value.id === 'number';
}

/**
 * A worker's side of the status page: answers the primary's collections with this worker's facts, and
 * gathers every worker's facts (through the primary) when a status request reached this worker. When
 * the primary does not answer in time the page shows this worker alone rather than failing.
 */
export class WorkerStatus {
  private asked = 0;
  private readonly waiting = new Map<number, (parts: ProcessFacts[] | undefined) => void>();
  private readonly onMessage = (message: unknown): void => {
    if (!isStatusMessage(message)) return;
    if (message.pullgate === 'status-collect') {
      this.channel.send({ pullgate: 'status-own', id: message.id, facts: this.own() } satisfies StatusMessage);
    } else if (message.pullgate === 'status-parts') {
      this.waiting.get(message.id)?.(message.parts);
    }
  };

  constructor(
    private readonly own: () => ProcessFacts,
    private readonly channel: PrimaryChannel = processChannel(),
  ) {
    channel.on('message', this.onMessage);
  }

  /** Every worker's facts, from the primary; this worker's alone when it does not answer. */
  readonly gather: GatherParts = (own) => {
    const id = this.asked++;
    return new Promise<ProcessFacts[]>((resolve) => {
      const done = (parts: ProcessFacts[] | undefined): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(parts !== undefined && parts.length > 0 ? parts : [own]);
      };
      const timer = setTimeout(() => done(undefined), ASK_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, done);
      this.channel.send({ pullgate: 'status-ask', id } satisfies StatusMessage);
    });
  };

  close(): void {
    this.channel.off('message', this.onMessage);
    for (const done of [...this.waiting.values()]) done(undefined);
  }
}

/**
 * The primary's side: when a worker asks, collects every live worker's facts and answers with them
 * (those that answered within COLLECT_TIMEOUT_MS: a stuck worker leaves the page without its figures).
 */
export class StatusAggregator {
  private collections = 0;
  private readonly pending = new Map<number, { parts: ProcessFacts[]; left: number; done: () => void }>();

  private readonly workers: Worker[] = [];

  constructor(workers: readonly Worker[] = []) {
    for (const worker of workers) this.add(worker);
  }

  /** Counts `worker` in from now on (a replacement of a dead one too); a dead worker leaves the list. */
  add(worker: Worker): void {
    this.workers.push(worker);
    worker.on('message', (message: unknown) => this.onMessage(worker, message));
    worker.on('exit', () => {
      const at = this.workers.indexOf(worker);
      if (at >= 0) this.workers.splice(at, 1);
    });
  }

  private onMessage(from: Worker, message: unknown): void {
    if (!isStatusMessage(message)) return;
    if (message.pullgate === 'status-ask') {
      const asked = message.id;
      void this.collect().then((parts) => {
        if (from.isConnected()) from.send({ pullgate: 'status-parts', id: asked, parts } satisfies StatusMessage);
      });
    } else if (message.pullgate === 'status-own') {
      const collection = this.pending.get(message.id);
      if (collection === undefined) return;
      collection.parts.push(message.facts);
      if (--collection.left === 0) collection.done();
    }
  }

  /** Every live worker's facts (those that answered in time), in worker order. */
  collect(): Promise<ProcessFacts[]> {
    const id = this.collections++;
    const live = this.workers.filter((worker) => worker.isConnected());
    return new Promise<ProcessFacts[]>((resolve) => {
      const parts: ProcessFacts[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(parts.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })));
      };
      const timer = setTimeout(done, COLLECT_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { parts, left: live.length, done });
      if (live.length === 0) done();
      for (const worker of live) worker.send({ pullgate: 'status-collect', id } satisfies StatusMessage);
    });
  }
}
