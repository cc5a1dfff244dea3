// Bench probes: streaming GETs that hash what they receive, a /proc RSS sampler, upstream access-log counts.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { type AccessEntry, readAccessLog } from '../../support/access-log.js';

export interface GetResult {
  status: number;
  bytes: number;
  digest: string;
  ms: number;
}

/** One GET whose body is streamed through SHA-256 (never held in memory). */
export async function getAndHash(url: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<GetResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, timeout: timeoutMs }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      res.once('end', () => {
        if (!res.complete) {
          reject(new Error(`GET ${url}: body cut after ${bytes} bytes`));
          return;
        }
        resolve({ status: res.statusCode ?? 0, bytes, digest: `sha256:${hash.digest('hex')}`, ms: performance.now() - started });
      });
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url}: no progress for ${timeoutMs} ms`)));
    req.once('error', reject);
  });
}

/** GETs once and throws unless the answer is a 200 whose body has the expected digest. */
export async function expectBody(url: string, digest: string, headers: Record<string, string> = {}): Promise<GetResult> {
  const r = await getAndHash(url, headers);
  if (r.status !== 200 || r.digest !== digest) {
    throw new Error(`GET ${url}: expected 200 with ${digest}, got ${r.status} with ${r.bytes} bytes hashing to ${r.digest}`);
  }
  return r;
}

export interface FanOut {
  results: GetResult[];
  /** Wall time until the last client finished. */
  ms: number;
  /** Clients that did not get a 200 with the expected digest (or failed). */
  failures: string[];
}

/** `n` clients GET at once, the same URL or client i the URL `url(i)`; each body is hashed and checked. */
export async function fanOut(url: string | ((client: number) => string), n: number, digest: string): Promise<FanOut> {
  const started = performance.now();
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => getAndHash(typeof url === 'string' ? url : url(i))));
  const results: GetResult[] = [];
  const failures: string[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'rejected') {
      failures.push(`client ${i}: ${s.reason instanceof Error ? s.reason.message : String(s.reason)}`);
      return;
    }
    results.push(s.value);
    if (s.value.status !== 200 || s.value.digest !== digest) {
      failures.push(`client ${i}: ${s.value.status}, ${s.value.bytes} bytes, ${s.value.digest}`);
    }
  });
  return { results, ms: performance.now() - started, failures };
}

/**
 * The memory fields of /proc/<pid>/status, in KiB: VmRSS (resident now), VmHWM (peak resident since start or
 * reset), RssAnon (private pages) and RssFile (pages of mapped files).
 */
export type StatusField = 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile';

/** Reads `fields` from one read of /proc/<pid>/status, so they describe the same moment. */
export async function procStatus<F extends StatusField>(pid: number, fields: readonly F[]): Promise<Record<F, number>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const values = {} as Record<F, number>;
  for (const field of fields) {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (m?.[1] === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
    values[field] = Number(m[1]);
  }
  return values;
}

/** One field of /proc/<pid>/status in KiB. */
export async function procStatusKiB(pid: number, field: StatusField): Promise<number> {
  return (await procStatus(pid, [field]))[field];
}

/** Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); false where the kernel refuses. */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Polls VmRSS of a process every `intervalMs` until stopped; keeps the highest value. */
export class RssSampler {
  private peakKiB = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, intervalMs = 20) {
    this.timer = setInterval(() => {
      procStatusKiB(this.pid, 'VmRSS').then(
        (kib) => {
          this.samples += 1;
          if (kib > this.peakKiB) this.peakKiB = kib;
        },
        () => undefined,
      );
    }, intervalMs);
  }

  stop(): { peakKiB: number; samples: number } {
    clearInterval(this.timer);
    return { peakKiB: this.peakKiB, samples: this.samples };
  }
}

/** A position in a registry's access log, to count the requests logged after it. */
export class AccessLogMark {
  private constructor(private readonly logPath: string, private readonly seen: number) {}

  static async at(logPath: string): Promise<AccessLogMark> {
    return new AccessLogMark(logPath, (await readAccessLog(logPath)).length);
  }

  /** Entries logged since the mark (after a short pause: the registry logs once a response is done). */
  async since(settleMs = 300): Promise<AccessEntry[]> {
    await new Promise((r) => setTimeout(r, settleMs));
    return (await readAccessLog(this.logPath)).slice(this.seen);
  }
}

/** Splits upstream requests by kind, for the report. */
export function classify(entries: readonly AccessEntry[]): { manifests: number; blobGets: number; blobHeads: number; pings: number; other: number } {
  const out = { manifests: 0, blobGets: 0, blobHeads: 0, pings: 0, other: 0 };
  for (const e of entries) {
    const path = e.uri.split('?')[0] ?? e.uri;
    if (path === '/v2/' || path === '/v2') out.pings += 1;
    else if (/\/manifests\/[^/]+$/.test(path)) out.manifests += 1;
    else if (/\/blobs\/sha256:[0-9a-f]{64}$/.test(path) && e.method === 'GET') out.blobGets += 1;
    else if (/\/blobs\/sha256:[0-9a-f]{64}$/.test(path) && e.method === 'HEAD') out.blobHeads += 1;
    else out.other += 1;
  }
  return out;
}
