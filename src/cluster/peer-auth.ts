import { createHmac, timingSafeEqual } from 'node:crypto';

/** The request header that carries a peer's signature: `<unix ms>.<hex HMAC-SHA256>`. */
export const PEER_HEADER = 'x-pullgate-peer';
/** Largest difference between a signature's time and this replica's clock that is accepted, either way. */
export const MAX_SKEW_MS = 30_000;

function mac(secret: string, method: string, path: string, timestamp: string): Buffer {
  return createHmac('sha256', secret).update(`pullgate-peer-v1\n${method}\n${path}\n${timestamp}`).digest();
}

/** The header value that authenticates `method path` at `now` with the shared cluster secret. */
export function signPeerRequest(secret: string, method: string, path: string, now: number): string {
  const timestamp = String(Math.floor(now));
  return `${timestamp}.${mac(secret, method, path, timestamp).toString('hex')}`;
}

/** Why a peer request was refused: no signature (401), or a wrong or stale one (403). */
export type PeerAuthFailure = 'missing' | 'malformed' | 'wrong' | 'stale';

/**
 * Checks a peer request's signature: an HMAC-SHA256 of method, path and time under the shared secret,
 * compared in constant time, and a time within MAX_SKEW_MS of this replica's clock, so a captured
 * request cannot be replayed later (within the window it can only fetch the same blob again).
 */
export function verifyPeerRequest(secret: string, method: string, path: string, header: string | undefined, now: number): PeerAuthFailure | undefined {
  if (header === undefined || header === '') return 'missing';
  const match = /^(\d{1,16})\.([0-9a-f]{64})$/.exec(header);
  if (match === null || match[1] === undefined || match[2] === undefined) return 'malformed';
  const expected = mac(secret, method, path, match[1]);
  if (!timingSafeEqual(expected, Buffer.from(match[2], 'hex'))) return 'wrong';
  if (Math.abs(now - Number(match[1])) > MAX_SKEW_MS) return 'stale';
  return undefined;
}
