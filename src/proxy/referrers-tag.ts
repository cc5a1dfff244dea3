import { NotFound, UpstreamProtocolError } from '../core/errors.js';
import type { Route } from '../routing/route.js';
import { isRecord } from '../util/is-record.js';
import type { UpstreamManifests } from './manifests.js';
import type { JsonAnswer } from './types.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/**
 * The tag that holds a subject's referrers on a registry without the referrers API (OCI distribution
 * spec, "referrers tag schema"): `<alg>-<hex>`, the hex cut to 64 characters so the tag stays valid.
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(':');
  return `${digest.slice(0, colon)}-${digest.slice(colon + 1, colon + 1 + 64)}`;
}

/** An OCI image index of `manifests` as a referrers answer (with OCI-Filters-Applied when filtered). */
function indexAnswer(manifests: unknown[], filtered: boolean): JsonAnswer {
  return {
    body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })),
    contentType: OCI_INDEX,
    headers: filtered ? { 'oci-filters-applied': 'artifactType' } : {},
  };
}

/**
 * Answers `GET referrers/<digest>` from the `<alg>-<hex>` fallback tag when upstream has no referrers
 * API (as zot and the OCI clients do): that tag's image index is the list, filtered by
 * `artifactType` here, and a subject with no such tag has no referrers (an empty index). The tag is
 * fetched like every other tag (validated, within upstream.deadline), but not cached: referrers change.
 */
export async function referrersFromTag(manifests: UpstreamManifests, route: Route, digest: string, artifactType: string | null, signal: AbortSignal): Promise<JsonAnswer> {
  const filtered = artifactType !== null;
  let body: Buffer | undefined;
  try {
    const answer = await manifests.get({ route, reference: { kind: 'tag', value: referrersTag(digest) }, method: 'GET', accept: OCI_INDEX, signal });
    body = answer.body;
  } catch (err) {
    if (err instanceof NotFound && err.kind === 'manifest') return indexAnswer([], filtered);
    throw err;
  }
  const index: unknown = JSON.parse(body?.toString('utf8') ?? '{}');
  const listed = isRecord(index) && Array.isArray(index.manifests) ? index.manifests : undefined;
  if (listed === undefined) throw new UpstreamProtocolError(route.registry, `${route.registry} holds a referrers tag ${referrersTag(digest)} that is not an image index`);
  return indexAnswer(filtered ? listed.filter((entry) => isRecord(entry) && entry.artifactType === artifactType) : listed, filtered);
}
