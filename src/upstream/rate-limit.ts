import type { Headers } from './http.js';

/** A registry's pull allowance as its last answer stated it (Docker Hub's `ratelimit-*` headers). */
export interface RateLimit {
  limit: number | undefined;
  remaining: number | undefined;
  /** The window the figures apply to (`w=` in `100;w=21600`), in seconds. */
  windowSeconds: number | undefined;
}

/** One `ratelimit-*` value: the count and, when given, its window. */
export interface RateLimitValue {
  count: number;
  windowSeconds: number | undefined;
}

/**
 * Parses one `ratelimit-limit` / `ratelimit-remaining` value: Docker Hub's `76;w=21600`, a bare `76`,
 * or a list of policies (`100, 100;w=21600`, the IETF draft's form), of which the first count is taken
 * and the first window found. Undefined for anything else (the header is advice: a bad one is ignored).
 */
export function parseRateLimitValue(value: string | string[] | undefined): RateLimitValue | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text === undefined) return undefined;
  let count: number | undefined;
  let windowSeconds: number | undefined;
  for (const item of text.split(',')) {
    const [first = '', ...params] = item.split(';').map((part) => part.trim());
    if (count === undefined) {
      if (!/^\d{1,15}$/.test(first)) return undefined;
      count = Number(first);
    }
    for (const param of params) {
      const match = /^w\s*=\s*(\d{1,12})$/i.exec(param);
      if (match !== null && windowSeconds === undefined) windowSeconds = Number(match[1]);
    }
  }
  return count === undefined ? undefined : { count, windowSeconds };
}

/** The rate limit an upstream answer states, or undefined when it carries neither header. */
export function rateLimitOf(headers: Headers): RateLimit | undefined {
  const limit = parseRateLimitValue(headers['ratelimit-limit']);
  const remaining = parseRateLimitValue(headers['ratelimit-remaining']);
  if (limit === undefined && remaining === undefined) return undefined;
  return { limit: limit?.count, remaining: remaining?.count, windowSeconds: remaining?.windowSeconds ?? limit?.windowSeconds };
}

/** `Retry-After` (seconds or an HTTP date) as milliseconds from `now`; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  if (/^\s*\d{1,9}\s*$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
