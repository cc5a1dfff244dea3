// Counting the upstream GETs of one blob in its access log: served, challenged (401), failed.
import type { AccessLogMark } from './probes.js';

/** Upstream GETs of one blob since a mark: answered with the content (2xx/3xx), challenged (401), other. */
export interface BlobGets {
  served: number;
  challenged: number;
  other: number;
}

export async function countBlobGets(mark: AccessLogMark, digest: string): Promise<BlobGets> {
  const entries = await mark.since(500);
  const gets = entries.filter((e) => e.method === 'GET' && (e.uri.split('?')[0] ?? '').endsWith(`/blobs/${digest}`));
  return {
    served: gets.filter((e) => e.status < 400).length,
    challenged: gets.filter((e) => e.status === 401).length,
    other: gets.filter((e) => e.status >= 400 && e.status !== 401).length,
  };
}

export function blobGetsText(g: BlobGets): string {
  return `${g.served} served` + (g.challenged > 0 ? ` (+${g.challenged} answered 401)` : '') + (g.other > 0 ? ` (+${g.other} failed)` : '');
}
