import { spawn } from 'node:child_process';
import type { Clock } from '../../core/deps.js';
import type { Secret } from '../credential.js';
import { isRecord } from '../../util/is-record.js';

/** What running a helper produced. `error` is set when it could not be started (ENOENT …). */
export interface HelperResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error?: NodeJS.ErrnoException;
}

/** Runs a program with arguments and stdin; injectable so tests need no real helper. */
export type HelperRunner = (program: string, args: string[], input: string, options: { env: NodeJS.ProcessEnv; timeoutMs: number }) => Promise<HelperResult>;

/** How long a helper may run (as ocync): desktop keychains can prompt or hang. */
export const HELPER_TIMEOUT_MS = 30_000;
/** How long a helper's answer (or its "not found") is reused before asking again. */
export const HELPER_CACHE_MS = 60_000;
/** Largest helper output read. */
const MAX_OUTPUT = 64 * 1024;
const VALID_NAME = /^[A-Za-z0-9-]+$/;

/** Spawns the program, searching `PATH` from the given env; kills it after the time limit. */
export const spawnHelper: HelperRunner = (program, args, input, options) =>
  new Promise((resolve) => {
    const child = spawn(program, args, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk.toString('utf8');
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr, timedOut, error });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });

/** A helper's answer: credentials, "not found", or a failure described for the user. */
export type HelperAnswer = { kind: 'found'; secret: Secret } | { kind: 'not-found' } | { kind: 'failed'; reason: string };

/** Reads the `get` output `{"ServerURL","Username","Secret"}`; `Username: "<token>"` means an identity token. */
export function parseHelperOutput(stdout: string): Secret | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed)) return undefined;
  const record = parsed;
  const username = typeof record.Username === 'string' ? record.Username : '';
  const secret = typeof record.Secret === 'string' ? record.Secret : '';
  if (secret === '' && username === '') return undefined;
  if (username === '<token>') return { kind: 'refresh', username: undefined, refreshToken: secret };
  return { kind: 'basic', username, password: secret };
}

/**
 * Asks `docker-credential-<name> get` for a server URL (docker-credential-helpers protocol),
 * caching each answer — "not found" included — for a minute so a pull does not spawn a process
 * per blob. Concurrent asks for one key share one process.
 */
export class CredentialHelpers {
  private readonly cache = new Map<string, { at: number; answer: Promise<HelperAnswer> }>();

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly clock: Clock,
    private readonly run: HelperRunner = spawnHelper,
  ) {}

  get(name: string, serverUrl: string): Promise<HelperAnswer> {
    const key = `${name}\0${serverUrl}`;
    const hit = this.cache.get(key);
    if (hit && this.clock.now() - hit.at < HELPER_CACHE_MS) return hit.answer;
    const answer = this.ask(name, serverUrl);
    this.cache.set(key, { at: this.clock.now(), answer });
    return answer;
  }

  invalidate(): void {
    this.cache.clear();
  }

  private async ask(name: string, serverUrl: string): Promise<HelperAnswer> {
    if (!VALID_NAME.test(name)) return { kind: 'failed', reason: `credential helper name "${name}" is invalid (letters, digits and - only)` };
    const program = `docker-credential-${name}`;
    const result = await this.run(program, ['get'], serverUrl, { env: this.env, timeoutMs: HELPER_TIMEOUT_MS });
    if (result.error) {
      const why = result.error.code === 'ENOENT' ? 'is not installed (not found on PATH)' : `could not be started (${result.error.code ?? result.error.message})`;
      return { kind: 'failed', reason: `${program} ${why}` };
    }
    if (result.timedOut) return { kind: 'failed', reason: `${program} did not answer within ${HELPER_TIMEOUT_MS / 1000} s` };
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) {
      if (/credentials not found/i.test(output)) return { kind: 'not-found' };
      // Only the first line of stderr, trimmed: helpers do not print secrets on failure, and this keeps messages short.
      const firstLine = (result.stderr.trim() || result.stdout.trim()).split('\n')[0]?.slice(0, 200) ?? '';
      return { kind: 'failed', reason: `${program} get failed (exit ${result.code ?? 'signal'})${firstLine ? `: ${firstLine}` : ''}` };
    }
    const secret = parseHelperOutput(result.stdout);
    if (!secret) return { kind: 'failed', reason: `${program} get printed an answer that is not {"Username","Secret"} JSON` };
    return { kind: 'found', secret };
  }
}
