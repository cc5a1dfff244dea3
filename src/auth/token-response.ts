import { jwtExpiry } from './jwt.js';

/** A bearer token and when pullgate must stop using it. */
export interface IssuedToken {
  token: string;
  /** Epoch ms at which the token expires upstream. */
  expiresAt: number;
  refreshToken: string | undefined;
}

/** Tokens without a usable lifetime live this long; shorter `expires_in` values are raised to it. */
export const MIN_TOKEN_LIFETIME_MS = 60_000;
/** issued_at is trusted only this far from pullgate's clock; beyond it the exchange time is used. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

function field(body: Record<string, unknown>, name: string): unknown {
  return body[name];
}

/**
 * Reads a token-server answer: `token` or `access_token` (non-empty), lifetime from `expires_in`
 * (raised to 60 s) counted from `issued_at` or the exchange, else the JWT `exp`, else 60 s.
 */
export function parseTokenResponse(body: unknown, now: number): IssuedToken {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Error('token response is not a JSON object');
  }
  const record = body as Record<string, unknown>;
  const token = [field(record, 'token'), field(record, 'access_token')].find(
    (value): value is string => typeof value === 'string' && value !== '',
  );
  if (token === undefined) throw new Error('token response has no token');
  const refresh = field(record, 'refresh_token');
  const expiresIn = field(record, 'expires_in');
  const issuedAtText = field(record, 'issued_at');
  const issuedAt = typeof issuedAtText === 'string' ? Date.parse(issuedAtText) : Number.NaN;
  const start = Number.isFinite(issuedAt) && Math.abs(now - issuedAt) <= MAX_CLOCK_SKEW_MS ? Math.min(issuedAt, now) : now;
  let expiresAt: number;
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) {
    expiresAt = start + Math.max(expiresIn * 1000, MIN_TOKEN_LIFETIME_MS);
  } else {
    const exp = jwtExpiry(token);
    expiresAt = exp !== undefined && exp > now ? exp : now + MIN_TOKEN_LIFETIME_MS;
  }
  return { token, expiresAt, refreshToken: typeof refresh === 'string' && refresh !== '' ? refresh : undefined };
}

/** How long before expiry a token is replaced: a quarter of its life, at most 30 s. */
export function refreshMargin(lifetimeMs: number): number {
  return Math.min(30_000, Math.floor(lifetimeMs / 4));
}
