import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/**
 * The worker's program (CommonJS, run with eval so it needs no build step): its own connection to the index
 * file, and a PASSIVE checkpoint per request. PASSIVE never waits for the serving connection's locks and
 * only copies frames that are already committed, so it cannot lose or block a write.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
parentPort.postMessage('ready');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, busy: result.busy, log: result.log, checkpointed: result.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) });
  }
});
`;

/** One checkpoint's outcome: WAL frames in the log and how many of them are now in the database file. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

type Answer = ({ ok: true } & CheckpointResult) | { ok: false; error: string };

/**
 * Checkpoints an index's WAL from a second connection in a worker thread, so that the serving connection
 * (whose `wal_autocheckpoint` is 0) never copies WAL pages into the database on the event loop. Requests
 * made while one runs are merged into one more.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private closed = false;
  /** Callers of the checkpoint running now, or undefined when none runs. */
  private current: ((result: CheckpointResult | undefined) => void)[] | undefined;
  /** Callers that asked while one ran: the next checkpoint is theirs, as it sees their writes. */
  private waiting: ((result: CheckpointResult | undefined) => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly exited: Promise<void>;
  /** Settles once the worker has opened its connection (or failed to): the file is open from then on. */
  readonly ready: Promise<void>;

  /**
   * Starts the worker on `file`; checkpoints every `intervalMs` and on request(). `onFailure` runs once
   * when the worker cannot go on (the caller then checkpoints on its own connection again).
   */
  constructor(
    file: string,
    intervalMs: number,
    private readonly logger: Logger,
    private readonly onFailure: () => void,
  ) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, module } });
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.ready = new Promise((resolve) => {
      this.worker.once('message', () => resolve());
      void this.exited.then(resolve);
    });
    this.worker.on('message', (reply: 'ready' | Answer) => {
      if (reply !== 'ready') this.answered(reply);
    });
    this.worker.on('error', (err) => this.failed(err.message));
    this.timer = setInterval(() => void this.request(), intervalMs);
    this.timer.unref();
  }

  /** Asks for a PASSIVE checkpoint; resolves with its result (undefined when the checkpointer is closed or failed). */
  request(): Promise<CheckpointResult | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const result = new Promise<CheckpointResult | undefined>((resolve) => this.waiting.push(resolve));
    if (this.current === undefined) this.start();
    return result;
  }

  private start(): void {
    this.current = this.waiting;
    this.waiting = [];
    this.worker.postMessage('checkpoint');
  }

  private answered(reply: Answer): void {
    const settled = this.current ?? [];
    this.current = undefined;
    const result = reply.ok ? { busy: reply.busy, log: reply.log, checkpointed: reply.checkpointed } : undefined;
    if (!reply.ok) this.logger.warn({ err: reply.error }, 'index checkpoint failed; the next one retries');
    for (const resolve of settled) resolve(result);
    if (this.waiting.length > 0 && !this.closed) this.start();
  }

  private failed(message: string): void {
    if (this.closed) return;
    this.logger.warn({ err: message }, 'index checkpoint thread failed; checkpointing on the serving connection again');
    this.shutDown();
    this.onFailure();
  }

  private shutDown(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const resolve of [...(this.current ?? []), ...this.waiting]) resolve(undefined);
    this.current = undefined;
    this.waiting = [];
  }

  /** Stops the worker and closes its connection. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.shutDown();
      // Held open until the worker has closed its connection (a CLI command's process must wait for it).
      this.worker.ref();
      this.worker.postMessage('close');
    }
    await this.exited;
  }
}
