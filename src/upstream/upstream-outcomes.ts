import { DigestMismatch, ManifestRejected, UpstreamDenied, UpstreamProtocolError, UpstreamRateLimited, UpstreamUnavailable } from '../core/errors.js';

/** Why an upstream request failed: the `reason` label of pullgate_upstream_failures_total (fixed words, never a secret). */
export type UpstreamFailureReason = 'connect' | 'timeout' | '5xx' | '429' | 'denied' | 'protocol' | 'digest_mismatch' | 'manifest_rejected' | 'other';

/**
 * Told how each request to a registry ended: answered (any status below 500 but 429), or failed and why.
 * The RegistryClient reports every request it sends; the proxies report content they refused.
 */
export interface UpstreamOutcomes {
  answered(registry: string): void;
  failed(registry: string, reason: UpstreamFailureReason): void;
}

/** The failure reason of an upstream status, or undefined when the registry answered (2xx–4xx but 429). */
export function statusFailure(status: number): UpstreamFailureReason | undefined {
  if (status >= 500) return '5xx';
  if (status === 429) return '429';
  return undefined;
}

/** The failure reason of an error thrown while talking to a registry. */
export function failureReason(err: unknown): UpstreamFailureReason {
  if (err instanceof UpstreamUnavailable) return err.timedOut ? 'timeout' : err.reachable ? '5xx' : 'connect';
  if (err instanceof UpstreamRateLimited) return '429';
  if (err instanceof UpstreamDenied) return 'denied';
  if (err instanceof DigestMismatch) return 'digest_mismatch';
  if (err instanceof ManifestRejected) return 'manifest_rejected';
  if (err instanceof UpstreamProtocolError) return 'protocol';
  return 'other';
}
