import { isRecord } from '../util/is-record.js';

/**
 * Reads the claims of a JWT without verifying it (pullgate only needs the expiry and, for
 * messages, the subject and audience); undefined when the token is not a JWT.
 */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined || payload === '') return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return isRecord(claims) ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** The JWT `exp` claim in epoch ms, or undefined. */
export function jwtExpiry(token: string): number | undefined {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}
