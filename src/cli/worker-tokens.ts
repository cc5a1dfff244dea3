import type { HostTokens, SharedToken } from '../core/host-tokens.js';
import type { Clock } from '../core/clock.js';
import { processChannel, type PrimaryChannel } from './worker-metrics.js';

/**
 * How long a worker waits for the primary's answer before it fetches the token itself: longer than a
 * token exchange takes (the upstream timeout), so a slow one is not doubled.
 */
const ASK_TIMEOUT_MS = 60_000;
/** Most tokens the primary holds (as the token cache: one per registry, scope and credential in use). */
const MAX_TOKENS = 10_000;

/**
 * The IPC messages of shared tokens under `serve --workers`: a worker asks the primary for a key (`ask`);
 * the primary answers with the token, or without one, which tells the worker to fetch it (`answer`); the
 * worker that fetched shares the token (`put`) or says it failed (`failed`); a refused token is dropped
 * (`forget`). Tokens cross only this local channel, never a log line.
 */
export type TokenMessage =
  | { pullgate: 'token-ask'; id: number; key: string }
  | { pullgate: 'token-answer'; id: number; token?: SharedToken }
  | { pullgate: 'token-put'; key: string; token: SharedToken }
  | { pullgate: 'token-failed'; key: string }
  | { pullgate: 'token-forget'; key: string; value: string };

function isTokenMessage(value: unknown): value is TokenMessage {
  if (typeof value !== 'object' || value === null || !('pullgate' in value)) return false;
  return typeof value.pullgate === 'string' && value.pullgate.startsWith('token-');
}

/** A worker's side: asks the primary, and fetches (then shares) only when the primary says so. */
export class WorkerTokens implements HostTokens {
  private asked = 0;
  private readonly waiting = new Map<number, { resolve: (token: SharedToken | undefined) => void; timer: NodeJS.Timeout }>();
  private readonly onMessage = (message: unknown): void => {
    if (!isTokenMessage(message) || message.pullgate !== 'token-answer') return;
    const waiter = this.waiting.get(message.id);
    if (waiter === undefined) return;
    this.waiting.delete(message.id);
    clearTimeout(waiter.timer);
    waiter.resolve(message.token);
  };

  constructor(private readonly channel: PrimaryChannel = processChannel()) {
    channel.on('message', this.onMessage);
  }

  async obtain(key: string, fetch: () => Promise<SharedToken>): Promise<SharedToken> {
    const held = await this.ask(key);
    if (held !== undefined) return held;
    let token: SharedToken;
    try {
      token = await fetch();
    } catch (err) {
      this.channel.send({ pullgate: 'token-failed', key } satisfies TokenMessage);
      throw err;
    }
    this.channel.send({ pullgate: 'token-put', key, token } satisfies TokenMessage);
    return token;
  }

  forget(key: string, value: string): void {
    this.channel.send({ pullgate: 'token-forget', key, value } satisfies TokenMessage);
  }

  /** The primary's token for `key`, or undefined when this worker is to fetch it (or the primary did not answer). */
  private ask(key: string): Promise<SharedToken | undefined> {
    const id = this.asked++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, ASK_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, { resolve, timer });
      this.channel.send({ pullgate: 'token-ask', id, key } satisfies TokenMessage);
    });
  }

  /** Stops listening to the primary. */
  close(): void {
    this.channel.off('message', this.onMessage);
    for (const waiter of this.waiting.values()) clearTimeout(waiter.timer);
    this.waiting.clear();
  }
}

/** A worker as the primary sees it (node:cluster's Worker; a fake in tests). */
export interface TokenPeer {
  send(message: TokenMessage): unknown;
  isConnected(): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  once(event: 'exit', listener: () => void): unknown;
}

/** What the primary holds for a key: a token, or the worker fetching it and the asks waiting for it. */
type Entry = { token: SharedToken } | { fetcher: TokenPeer; waiting: { worker: TokenPeer; id: number }[] };

/**
 * The primary's side: holds each key's token until its refresh time (the fetching worker's refresh rule)
 * and lets one worker at a time fetch a key that it does not hold, answering the others once it has
 * shared the token. When that worker fails or dies, the waiting ones are told to fetch for themselves.
 */
export class TokenBroker {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock) {}

  /** Answers `worker`'s asks too (a worker started, or started in place of one that died). */
  add(worker: TokenPeer): void {
    worker.on('message', (message: unknown) => {
      if (isTokenMessage(message)) this.onMessage(worker, message);
    });
    worker.once('exit', () => this.gone(worker));
  }

  private onMessage(from: TokenPeer, message: TokenMessage): void {
    switch (message.pullgate) {
      case 'token-ask':
        this.ask(from, message.key, message.id);
        break;
      case 'token-put':
        this.settle(message.key, message.token);
        break;
      case 'token-failed': {
        const entry = this.entries.get(message.key);
        if (entry !== undefined && 'fetcher' in entry && entry.fetcher === from) this.settle(message.key, undefined);
        break;
      }
      case 'token-forget': {
        const entry = this.entries.get(message.key);
        if (entry !== undefined && 'token' in entry && entry.token.value === message.value) this.entries.delete(message.key);
        break;
      }
      case 'token-answer':
        break;
    }
  }

  private ask(from: TokenPeer, key: string, id: number): void {
    const entry = this.entries.get(key);
    if (entry !== undefined && 'fetcher' in entry) {
      entry.waiting.push({ worker: from, id });
      return;
    }
    if (entry !== undefined && this.clock.now() < entry.token.refreshAt) {
      answer(from, id, entry.token);
      return;
    }
    this.entries.delete(key);
    this.entries.set(key, { fetcher: from, waiting: [] });
    this.trim();
    answer(from, id, undefined);
  }

  /** The fetch of `key` ended: with the token, every waiting ask gets it; without, each fetches for itself. */
  private settle(key: string, token: SharedToken | undefined): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (token !== undefined) this.entries.set(key, { token });
    if (entry === undefined || !('fetcher' in entry)) return;
    for (const { worker, id } of entry.waiting) answer(worker, id, token);
  }

  private gone(worker: TokenPeer): void {
    for (const [key, entry] of [...this.entries]) {
      if (!('fetcher' in entry)) continue;
      entry.waiting = entry.waiting.filter((ask) => ask.worker !== worker);
      if (entry.fetcher === worker) this.settle(key, undefined);
    }
  }

  /** Drops the oldest held tokens beyond MAX_TOKENS (fetches in progress are kept). */
  private trim(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= MAX_TOKENS) return;
      if ('token' in entry) this.entries.delete(key);
    }
  }

  /** Keys held or being fetched, for tests. */
  get size(): number {
    return this.entries.size;
  }
}

function answer(worker: TokenPeer, id: number, token: SharedToken | undefined): void {
  if (worker.isConnected()) worker.send({ pullgate: 'token-answer', id, ...(token === undefined ? {} : { token }) } satisfies TokenMessage);
}
