import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import type { Metrics } from '../core/metrics.js';
import { storageErrorCode, storageReason } from './storage-error.js';

/** What the cache was doing when storage failed (the `op` label of pullgate_storage_errors_total). */
export type StorageOp = 'fill' | 'commit' | 'manifest' | 'index' | 'evict' | 'layout' | 'probe';

/** Storage as /readyz reports it. */
export interface StorageStatus {
  writable: boolean;
  /** Why not: the error code (`ENOSPC`, `EROFS` …), a short reason, what failed and since when (ISO time). */
  error?: { code: string; reason: string; op: StorageOp; since: string };
}

/** After a write error, how long pullgate serves without writing before it tries storage again. */
export const STORAGE_RETRY_MS = 30_000;

interface Failure {
  code: string;
  reason: string;
  op: StorageOp;
  since: number;
  /** When the last write failed: the next attempt waits STORAGE_RETRY_MS from here. */
  at: number;
}

/**
 * Whether the cache may write to its storage. A write error makes storage "not writable": the
 * error is counted, logged once per outage, and no write is attempted for STORAGE_RETRY_MS; then the
 * next write or probe tries again and a success makes it writable. Probes run one at a time.
 */
export class StorageHealth {
  private failure: Failure | undefined;
  private probing: Promise<StorageStatus> | undefined;

  constructor(
    private readonly root: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    metrics.storageWritable.set(1);
  }

  get writable(): boolean {
    return this.failure === undefined;
  }

  /** True when storage is writable, or failed long enough ago that a write may be tried again. */
  retryDue(): boolean {
    return this.failure === undefined || this.clock.now() - this.failure.at >= STORAGE_RETRY_MS;
  }

  /**
   * Records a failed write; the first failure of an outage is logged as a warning (with `message`
   * when given), later ones at debug.
   */
  failed(op: StorageOp, err: unknown, context: Record<string, unknown> = {}, message?: string): void {
    const code = storageErrorCode(err);
    const reason = storageReason(err);
    const now = this.clock.now();
    this.metrics.storageErrors.inc({ op });
    const fields = { ...context, storage: this.root, op, code, reason };
    if (this.failure === undefined) {
      this.metrics.storageWritable.set(0);
      this.logger.warn(fields, message ?? `storage is not writable (${reason}): serving from upstream without caching; /readyz answers 503 until it is writable again`);
      this.failure = { code, reason, op, since: now, at: now };
      return;
    }
    this.logger.debug(fields, 'storage write failed again');
    this.failure = { ...this.failure, code, reason, op, at: now };
  }

  /** Records a successful write: storage is writable (again). */
  succeeded(): void {
    if (this.failure === undefined) return;
    const downMs = this.clock.now() - this.failure.since;
    this.failure = undefined;
    this.metrics.storageWritable.set(1);
    this.logger.info({ storage: this.root, downMs }, 'storage is writable again: caching resumes');
  }

  status(): StorageStatus {
    const failure = this.failure;
    if (failure === undefined) return { writable: true };
    return { writable: false, error: { code: failure.code, reason: failure.reason, op: failure.op, since: new Date(failure.since).toISOString() } };
  }

  /**
   * Runs `check` (which throws when storage cannot be written) unless a failure is too recent to try
   * again; concurrent callers share one check. Resolves with the status afterwards.
   */
  probe(check: () => Promise<void>): Promise<StorageStatus> {
    if (!this.retryDue()) return Promise.resolve(this.status());
    this.probing ??= check()
      .then(
        () => this.succeeded(),
        (err: unknown) => this.failed('probe', err),
      )
      .then(() => this.status())
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }
}
