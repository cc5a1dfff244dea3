import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The worker's whole program. It is evaluated (not a file beside this one) so the same code runs
 * from `src/` under tsx/vitest and from `dist/`; bcryptjs is imported by the path resolved here.
 */
const WORKER_SOURCE = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const bcrypt = (await import(workerData.bcrypt)).default;
  parentPort.on('message', ({ id, password, hash }) => {
    let ok = false;
    try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
    parentPort.postMessage({ id, ok });
  });
})();
`;

interface Pending {
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Default number of worker threads: bcrypt is CPU-bound, and one core stays free for serving. */
const DEFAULT_WORKERS = 1;

/**
 * Compares passwords with bcrypt hashes on a small pool of worker threads (started on first use,
 * unref'd, ended by close()), so a flood of logins never blocks the event loop that serves
 * everyone else.
 */
export class BcryptPool {
  private readonly slots: Slot[] = [];
  private readonly bcryptUrl = pathToFileURL(createRequire(import.meta.url).resolve('bcryptjs')).href;
  private nextId = 0;
  private closed = false;

  constructor(private readonly size = DEFAULT_WORKERS) {}

  /** Comparisons queued or running. */
  get pending(): number {
    return this.slots.reduce((sum, slot) => sum + slot.pending.size, 0);
  }

  /** True when `password` matches the bcrypt `hash`; a malformed hash is a mismatch. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('bcrypt pool is closed'));
    const slot = this.slot();
    const id = this.nextId++;
    return new Promise<boolean>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, password, hash });
    });
  }

  /** Ends the workers; comparisons still pending are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const slot of slots) this.fail(slot, new Error('bcrypt pool is closed'));
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  /** The least busy worker, starting one while the pool is below its size. */
  private slot(): Slot {
    const idle = this.slots.find((slot) => slot.pending.size === 0);
    if (idle) return idle;
    if (this.slots.length < this.size) return this.start();
    return this.slots.reduce((best, slot) => (slot.pending.size < best.pending.size ? slot : best));
  }

  private start(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcrypt: this.bcryptUrl } });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (message: { id: number; ok: unknown }) => {
      const waiting = slot.pending.get(message.id);
      slot.pending.delete(message.id);
      waiting?.resolve(message.ok === true);
    });
    const retire = (err: Error): void => {
      const at = this.slots.indexOf(slot);
      if (at !== -1) this.slots.splice(at, 1);
      this.fail(slot, err);
    };
    worker.on('error', retire);
    worker.on('exit', (code) => retire(new Error(`bcrypt worker exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private fail(slot: Slot, err: Error): void {
    for (const waiting of slot.pending.values()) waiting.reject(err);
    slot.pending.clear();
  }
}
