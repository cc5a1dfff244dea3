import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/config.js';

export type { TlsConfig };


/** How often the files are re-read: a Kubernetes Secret update (the `..data` swap) shows up within this. */
export const TLS_RELOAD_INTERVAL_MS = 5_000;

/**
 * The listener's certificate, key and client CA, re-read from disk when they change. Reads follow
 * symlinks each time, so the `..data` symlink swap of a mounted Kubernetes Secret (cert-manager
 * rotation) is seen like an edit in place. A new set is applied only once it forms a valid context
 * (key matches certificate); a broken or half-written set keeps the current one and logs why.
 * Open connections keep the context they were made with; new handshakes get the new one.
 */
export class TlsFiles {
  private fingerprint = '';
  private current: SecureContextOptions | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly config: TlsConfig,
    private readonly logger: Logger,
  ) {}

  /** Reads and checks the files; throws with the file at fault (used at start-up, where a bad set is fatal). */
  async load(): Promise<SecureContextOptions> {
    const [cert, key, ca] = await Promise.all([
      this.read('tls.cert', this.config.cert),
      this.read('tls.key', this.config.key),
      this.config.clientCA === undefined ? Promise.resolve(undefined) : this.read('tls.clientCA', this.config.clientCA),
    ]);
    const options: SecureContextOptions = { cert, key, ...(ca !== undefined ? { ca } : {}) };
    try {
      createSecureContext(options);
    } catch (err) {
      throw new Error(`tls: ${this.config.cert} and ${this.config.key} do not form a usable certificate: ${(err as Error).message}`);
    }
    this.fingerprint = fingerprintOf(cert, key, ca);
    this.current = options;
    return options;
  }

  /**
   * Re-reads the files and returns the new options when they changed and are valid; undefined when
   * nothing changed or the new set is not usable (then the current one stays and a warning is logged).
   */
  async reload(): Promise<SecureContextOptions | undefined> {
    let cert: Buffer;
    let key: Buffer;
    let ca: Buffer | undefined;
    try {
      [cert, key, ca] = await Promise.all([
        readFile(this.config.cert),
        readFile(this.config.key),
        this.config.clientCA === undefined ? Promise.resolve(undefined) : readFile(this.config.clientCA),
      ]);
    } catch (err) {
      this.logger.warn({ err: { message: (err as Error).message } }, 'tls: cannot re-read the certificate files; keeping the current certificate');
      return undefined;
    }
    const fingerprint = fingerprintOf(cert, key, ca);
    if (fingerprint === this.fingerprint) return undefined;
    const options: SecureContextOptions = { cert, key, ...(ca !== undefined ? { ca } : {}) };
    try {
      createSecureContext(options);
    } catch (err) {
      // Mid-rotation (new cert, old key) or a broken file: try again on the next round.
      this.logger.warn({ reason: (err as Error).message }, 'tls: the changed certificate files do not form a usable certificate yet; keeping the current one');
      return undefined;
    }
    this.fingerprint = fingerprint;
    this.current = options;
    this.logger.info({ cert: this.config.cert }, 'tls: certificate files changed; new connections use them');
    return options;
  }

  /** Re-reads every `intervalMs` and hands a changed, valid set to `apply` (the server's setSecureContext). */
  watch(apply: (options: SecureContextOptions) => void, intervalMs = TLS_RELOAD_INTERVAL_MS): void {
    this.stop();
    this.timer = setInterval(() => {
      void this.reload().then((options) => {
        if (options !== undefined) apply(options);
      });
    }, intervalMs);
    this.timer.unref();
  }

  /** The options in use (after `load`). */
  get options(): SecureContextOptions | undefined {
    return this.current;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async read(where: string, file: string): Promise<Buffer> {
    try {
      return await readFile(file);
    } catch (err) {
      throw new Error(`${where}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}

function fingerprintOf(cert: Buffer, key: Buffer, ca: Buffer | undefined): string {
  const hash = createHash('sha256').update(cert).update('\0').update(key).update('\0');
  if (ca !== undefined) hash.update(ca);
  return hash.digest('hex');
}
