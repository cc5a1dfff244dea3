// Runs wrk against one URL and parses its summary (requests, req/s, transfer/s, errors).
import { runOk } from '../../support/proc.js';

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
  /** Per-request timeout (wrk's default, 2 s, is too short for a 200 MB body on a loaded machine). */
  timeoutS?: number;
  headers?: readonly string[];
  /** A Lua script (wrk -s), e.g. one that picks a different path per request. */
  script?: string;
  /** wrk --latency: the percentiles of the latency distribution in `raw`. */
  latency?: boolean;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  reqPerSec: number;
  /** wrk's Transfer/sec, in bytes per second (wrk prints binary units: 1 MB = 2^20 bytes). */
  bytesPerSec: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  raw: string;
}

const BINARY_UNITS: Record<string, number> = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 };
const TIME_UNITS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

function need(re: RegExp, text: string, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (m === null) throw new Error(`wrk: no ${what} in its output:\n${text}`);
  return m;
}

function num(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || !Number.isFinite(n)) throw new Error(`wrk: unreadable ${what}: ${String(s)}`);
  return n;
}

/** Parses wrk 4's text summary. */
export function parseWrk(raw: string): WrkResult {
  const total = need(/(\d+) requests in ([\d.]+)(us|ms|s|m|h),/, raw, 'request total');
  const rps = need(/Requests\/sec:\s+([\d.]+)/, raw, 'Requests/sec');
  const transfer = need(/Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/, raw, 'Transfer/sec');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(raw);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  return {
    requests: num(total[1], 'request count'),
    seconds: num(total[2], 'duration') * (TIME_UNITS[total[3] ?? 's'] ?? 1),
    reqPerSec: num(rps[1], 'Requests/sec'),
    bytesPerSec: num(transfer[1], 'Transfer/sec') * (BINARY_UNITS[transfer[2] ?? 'B'] ?? 1),
    non2xx: non2xx === null ? 0 : num(non2xx[1], 'non-2xx count'),
    socketErrors: {
      connect: sock === null ? 0 : num(sock[1], 'connect errors'),
      read: sock === null ? 0 : num(sock[2], 'read errors'),
      write: sock === null ? 0 : num(sock[3], 'write errors'),
      timeout: sock === null ? 0 : num(sock[4], 'timeouts'),
    },
    raw,
  };
}

/** Total of wrk's failure counters: non-2xx answers and socket errors. */
export function wrkErrors(r: WrkResult): number {
  const s = r.socketErrors;
  return r.non2xx + s.connect + s.read + s.write + s.timeout;
}

/** `wrk -t -c -d --timeout [-H ...] url`, bounded by a deadline a little past the run's duration. */
export async function runWrk(url: string, opts: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    `--timeout`,
    `${opts.timeoutS ?? 10}s`,
    ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
    ...(opts.script === undefined ? [] : ['-s', opts.script]),
    ...(opts.latency === true ? ['--latency'] : []),
    url,
  ];
  const res = await runOk('wrk', args, { timeoutMs: (opts.durationS + 60) * 1000 });
  return parseWrk(res.stdout.toString('utf8'));
}
