import { readFile } from 'node:fs/promises';
import { waitFor } from '../../../support/wait.js';

/** One request line of pullgate's own JSON log (`msg: "request"`, src/http/access-log.ts). */
export interface PullgateRequest {
  method: string;
  path: string;
  registry: string | undefined;
  repository: string | undefined;
  status: number;
  /** The client: a user name or `anonymous`. */
  user: string | undefined;
  /** On a refusal: why (rule, no_rule, registry_policy, unauthenticated, throttled) and what decided it. */
  denied: string | undefined;
  rule: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Parses the request lines out of a pullgate log file (other lines, and non-JSON output, are ignored). */
export async function readPullgateRequests(logPath: string): Promise<PullgateRequest[]> {
  const requests: PullgateRequest[] = [];
  for (const line of (await readFile(logPath, 'utf8')).split('\n')) {
    if (!line.startsWith('{')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isRecord(parsed) || parsed.msg !== 'request') continue;
    const method = str(parsed.method);
    const path = str(parsed.path);
    if (method === undefined || path === undefined || typeof parsed.status !== 'number') continue;
    requests.push({
      method,
      path,
      registry: str(parsed.registry),
      repository: str(parsed.repository),
      status: parsed.status,
      user: str(parsed.user),
      denied: str(parsed.denied),
      rule: str(parsed.rule),
    });
  }
  return requests;
}

/**
 * Waits (pullgate writes request lines within about a second) until the request lines read so far satisfy
 * `done`; returns them. Times out with the lines it saw.
 */
export async function waitForPullgateLog(
  logPath: string,
  what: string,
  done: (requests: PullgateRequest[]) => boolean,
): Promise<PullgateRequest[]> {
  let seen: PullgateRequest[] = [];
  return waitFor(
    async () => {
      seen = await readPullgateRequests(logPath);
      return done(seen) ? seen : undefined;
    },
    {
      what: `pullgate's log (${logPath}) to show ${what}`,
      timeoutMs: 5_000,
      intervalMs: 100,
      describe: () => seen.map((r) => `${r.method} ${r.path} ${r.status} registry=${String(r.registry)}`).join('\n'),
    },
  );
}

/** Waits until the log holds a request matching `match`; returns every request line read by then. */
export function waitForPullgateRequest(
  logPath: string,
  what: string,
  match: (r: PullgateRequest) => boolean,
): Promise<PullgateRequest[]> {
  return waitForPullgateLog(logPath, what, (requests) => requests.some(match));
}
