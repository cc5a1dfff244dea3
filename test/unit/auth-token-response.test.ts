import { describe, expect, it } from 'vitest';
import { MIN_TOKEN_LIFETIME_MS, parseTokenResponse, refreshMargin } from '../../src/auth/token-response.js';

/** The fixed "end of exchange" time for every case: two seconds after the vector's issued_at. */
const NOW = Date.parse('2024-01-01T00:00:02Z');

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** An unsigned JWT `header.payload.sig` carrying the given claims. */
function jwt(claims: Record<string, unknown>): string {
  return `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url(claims)}.c2lnbmF0dXJl`;
}

describe('parseTokenResponse: reference §6 token bodies', () => {
  it('counts expires_in from issued_at (nanosecond fraction) when it is within the clock skew', () => {
    const issued = parseTokenResponse(
      { token: 'a', access_token: 'a', expires_in: 300, issued_at: '2024-01-01T00:00:00.123456789Z' },
      NOW,
    );
    expect(issued.token).toBe('a');
    expect(issued.expiresAt).toBe(Date.parse('2024-01-01T00:00:00.123Z') + 300_000);
    expect(issued.refreshToken).toBeUndefined();
  });

  it('takes the lifetime from the JWT exp claim when there is no expires_in', () => {
    const exp = Math.floor(NOW / 1000) + 900;
    const token = jwt({ sub: 'x', exp });
    const issued = parseTokenResponse({ access_token: token }, NOW);
    expect(issued.token).toBe(token);
    expect(issued.expiresAt).toBe(exp * 1000);
  });

  it('gives a token with no lifetime information 60 s', () => {
    const issued = parseTokenResponse({ token: 'x' }, NOW);
    expect(issued.expiresAt).toBe(NOW + 60_000);
    expect(issued.expiresAt - NOW).toBe(MIN_TOKEN_LIFETIME_MS);
  });

  it('raises expires_in below 60 s to 60 s', () => {
    expect(parseTokenResponse({ token: 'x', expires_in: 10 }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('rejects an empty token', () => {
    expect(() => parseTokenResponse({ token: '' }, NOW)).toThrow(/no token/);
  });

  it('keeps the refresh token and the 900 s lifetime of an OAuth2 answer', () => {
    const issued = parseTokenResponse({ refresh_token: 'rt', access_token: 'x', expires_in: 900 }, NOW);
    expect(issued).toEqual({ token: 'x', expiresAt: NOW + 900_000, refreshToken: 'rt' });
  });
});

describe('parseTokenResponse: issued_at and lifetimes', () => {
  it('ignores an issued_at far from the local clock and counts from now', () => {
    const issued = parseTokenResponse({ token: 'x', expires_in: 300, issued_at: '2023-06-01T00:00:00Z' }, NOW);
    expect(issued.expiresAt).toBe(NOW + 300_000);
  });

  it('ignores an issued_at far in the future', () => {
    const issued = parseTokenResponse({ token: 'x', expires_in: 300, issued_at: '2024-01-01T02:00:00Z' }, NOW);
    expect(issued.expiresAt).toBe(NOW + 300_000);
  });

  it('counts from now when issued_at is slightly in the future (never extends the lifetime)', () => {
    const issued = parseTokenResponse({ token: 'x', expires_in: 300, issued_at: '2024-01-01T00:00:30Z' }, NOW);
    expect(issued.expiresAt).toBe(NOW + 300_000);
  });

  it('ignores an unparseable issued_at', () => {
    const issued = parseTokenResponse({ token: 'x', expires_in: 300, issued_at: 'yesterday' }, NOW);
    expect(issued.expiresAt).toBe(NOW + 300_000);
  });

  it('prefers expires_in over the JWT exp claim', () => {
    const token = jwt({ exp: Math.floor(NOW / 1000) + 3600 });
    expect(parseTokenResponse({ token, expires_in: 300 }, NOW).expiresAt).toBe(NOW + 300_000);
  });

  it('falls back to 60 s when the JWT exp is already past', () => {
    const token = jwt({ exp: Math.floor(NOW / 1000) - 10 });
    expect(parseTokenResponse({ token }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('falls back to 60 s when the JWT payload is not JSON or has no numeric exp', () => {
    expect(parseTokenResponse({ token: 'aaa.%%%.ccc' }, NOW).expiresAt).toBe(NOW + 60_000);
    expect(parseTokenResponse({ token: jwt({ exp: 'soon' }) }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('ignores a zero, negative or non-numeric expires_in', () => {
    expect(parseTokenResponse({ token: 'x', expires_in: 0 }, NOW).expiresAt).toBe(NOW + 60_000);
    expect(parseTokenResponse({ token: 'x', expires_in: -5 }, NOW).expiresAt).toBe(NOW + 60_000);
    expect(parseTokenResponse({ token: 'x', expires_in: '300' }, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('uses access_token when token is empty', () => {
    expect(parseTokenResponse({ token: '', access_token: 'y' }, NOW).token).toBe('y');
  });

  it('treats an empty refresh_token as absent', () => {
    expect(parseTokenResponse({ token: 'x', refresh_token: '' }, NOW).refreshToken).toBeUndefined();
  });
});

describe('parseTokenResponse: invalid bodies', () => {
  it('rejects a body with neither token nor access_token', () => {
    expect(() => parseTokenResponse({ expires_in: 300 }, NOW)).toThrow(/no token/);
  });

  it('rejects a non-string token', () => {
    expect(() => parseTokenResponse({ token: 42 }, NOW)).toThrow(/no token/);
  });

  it('rejects bodies that are not JSON objects', () => {
    for (const body of [null, undefined, 'token', 42, true, ['x']]) {
      expect(() => parseTokenResponse(body, NOW)).toThrow(/not a JSON object/);
    }
  });
});

describe('refreshMargin', () => {
  it('is 30 s for a 5-minute token', () => {
    expect(refreshMargin(300_000)).toBe(30_000);
  });

  it('is capped at 30 s for long tokens', () => {
    expect(refreshMargin(12 * 3_600_000)).toBe(30_000);
  });

  it('is a quarter of the lifetime for short tokens', () => {
    expect(refreshMargin(60_000)).toBe(15_000);
    expect(refreshMargin(100)).toBe(25);
    expect(refreshMargin(0)).toBe(0);
  });
});
