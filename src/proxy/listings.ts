import { drain, readBody, header } from '../upstream/http.js';
import { failureFor } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { Route } from '../routing/route.js';
import { UpstreamManifests } from './manifests.js';
import { referrersFromTag } from './referrers-tag.js';
import type { JsonAnswer } from './types.js';

/** Largest tag list or referrers index relayed. */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Relays tag lists (pagination rewritten to the client's name) and referrers indexes (from the fallback tag when upstream has no referrers API). */
export class UpstreamListings {
  /** For the referrers fallback tag, fetched like every other tag. */
  private readonly manifests: UpstreamManifests;

  constructor(private readonly upstreams: Upstreams) {
    this.manifests = new UpstreamManifests(upstreams);
  }

  /** `GET tags/list?n=&last=`; the upstream Link header is re-expressed as `{n,last}` for the caller to rebuild. */
  async tags(route: Route, query: URLSearchParams, signal: AbortSignal): Promise<JsonAnswer & { next: URLSearchParams | undefined }> {
    const request = { method: 'GET' as const, repository: route.repository, path: '/tags/list', query: query.toString(), headers: { accept: 'application/json' }, signal };
    return this.upstreams.get(route.registry).fetchWhole(request, `the tag list of ${route.repository}`, async (response) => {
      if (response.status !== 200) throw await failureFor(route.registry, response, 'name', `repository ${route.repository}`);
      const body = await readBody(response.body, MAX_LISTING_BYTES);
      const link = header(response.headers, 'link');
      const target = link ? /<([^>]*)>/.exec(link)?.[1] : undefined;
      const next = target === undefined ? undefined : new URL(target, 'http://upstream.invalid').searchParams;
      return { body, contentType: 'application/json', headers: {}, next };
    });
  }

  /**
   * `GET referrers/<digest>[?artifactType=]`; a registry without the referrers API (404) is answered
   * from the `<alg>-<hex>` fallback tag instead (referrers-tag.ts).
   */
  async referrers(route: Route, digest: string, query: URLSearchParams, signal: AbortSignal): Promise<JsonAnswer> {
    const request = { method: 'GET' as const, repository: route.repository, path: `/referrers/${digest}`, query: query.toString(), headers: { accept: OCI_INDEX }, signal };
    const answer = await this.upstreams.get(route.registry).fetchWhole(request, `the referrers of ${digest}`, async (response): Promise<JsonAnswer | undefined> => {
      if (response.status === 404) {
        drain(response.body);
        return undefined;
      }
      if (response.status !== 200) throw await failureFor(route.registry, response, 'manifest', `referrers of ${digest}`);
      const body = await readBody(response.body, MAX_LISTING_BYTES);
      const filters = header(response.headers, 'oci-filters-applied');
      return {
        body,
        contentType: header(response.headers, 'content-type') ?? OCI_INDEX,
        headers: filters ? { 'oci-filters-applied': filters } : {},
      };
    });
    return answer ?? referrersFromTag(this.manifests, route, digest, query.get('artifactType'), signal);
  }
}
