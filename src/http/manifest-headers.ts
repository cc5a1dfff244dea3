import type { ManifestAnswer } from '../proxy/types.js';

/** The headers of a manifest answer, the same on the hot path and the ordinary one. */
export function manifestHeaders(answer: Pick<ManifestAnswer, 'mediaType' | 'digest' | 'size'>): Record<string, string> {
  return {
    'docker-distribution-api-version': 'registry/2.0',
    'content-type': answer.mediaType,
    'docker-content-digest': answer.digest,
    etag: `"${answer.digest}"`,
    'content-length': String(answer.size),
  };
}
