import type { RegistryConfig } from '../config/config.js';
import { DigestMismatch, ManifestRejected, NotFound, UpstreamRateLimited, UpstreamUnavailable } from '../core/errors.js';
import type { EndpointBreaker } from './endpoint-breaker.js';
import type { HttpResponse } from './http.js';
import type { RegistryClient, UpstreamRequest } from './registry-client.js';
import { failureFor } from './status.js';

/** One endpoint of a registry: its own client (credentials, tokens, redirects) and breaker. */
export interface Endpoint {
  /** The origin, as the metrics label and the log name it. */
  url: string;
  client: RegistryClient;
  /** False for the registry's own `url`. */
  mirror: boolean;
  /** Asked to resolve tags (always true for `url`). */
  tags: boolean;
  breaker: EndpointBreaker;
}

/** A path addressing content by digest: a blob, or a manifest by digest; its answer is verified, so any endpoint may give it. */
export function byDigest(path: string): boolean {
  return path.startsWith('/blobs/') || /^\/manifests\/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(path);
}

/** An answer that sends the request on to the next endpoint: unreachable, a 5xx, a 429. */
function unavailable(err: unknown): boolean {
  return err instanceof UpstreamUnavailable || err instanceof UpstreamRateLimited;
}

/** True when the request was aborted by its client (not by a time limit). */
function clientGone(signal: AbortSignal | undefined): boolean {
  if (!signal?.aborted) return false;
  const reason: unknown = signal.reason;
  return !(reason instanceof Error && reason.name === 'TimeoutError');
}

/**
 * Sends a registry's requests to its endpoints in order — `url`, then its `mirrors` — moving on after a
 * connection error, a timeout, a 5xx or a 429, and after a mirror's 404 or bad content for something
 * asked by digest. Tags, tag lists and referrers go only to `url` and mirrors with `tags: true`. An
 * endpoint whose breaker is open is skipped. With one endpoint the client is used as it is.
 */
export class EndpointChain {
  constructor(
    readonly registry: RegistryConfig,
    readonly endpoints: readonly Endpoint[],
  ) {}

  /** Sends a request; the answer of the first endpoint that gives a usable one (any status but the ones that move on). */
  async request(req: UpstreamRequest): Promise<HttpResponse> {
    const first = this.endpoints[0];
    if (this.endpoints.length === 1 && first !== undefined) return first.client.request(req);
    return this.attempt(req, async (endpoint, digest) => {
      const response = await endpoint.client.request(req);
      if (response.status >= 500 || response.status === 429 || (response.status === 404 && digest && endpoint.mirror)) {
        throw await failureFor(this.registry.key, response, req.path.startsWith('/blobs/') ? 'blob' : 'manifest', `${req.repository}${req.path} (${endpoint.url})`);
      }
      return response;
    });
  }

  /** `RegistryClient.fetchWhole` on each endpoint in turn, each within its own `upstream.deadline`. */
  fetchWhole<T>(req: UpstreamRequest, what: string, read: (response: HttpResponse) => Promise<T>): Promise<T> {
    const first = this.endpoints[0];
    if (this.endpoints.length === 1 && first !== undefined) return first.client.fetchWhole(req, what, read);
    return this.attempt(req, (endpoint, digest) =>
      endpoint.client.fetchWhole(req, what, async (response) => {
        if (response.status === 404 && digest && endpoint.mirror) throw await failureFor(this.registry.key, response, 'manifest', `${what} (${endpoint.url})`);
        return read(response);
      }),
    );
  }

  /** Tries `run` on each endpoint the request may go to, as the class comment says. */
  private async attempt<T>(req: UpstreamRequest, run: (endpoint: Endpoint, digest: boolean) => Promise<T>): Promise<T> {
    const digest = byDigest(req.path);
    const eligible = digest ? this.endpoints : this.endpoints.filter((endpoint) => endpoint.tags);
    let failure: unknown;
    let notFound: unknown;
    const skipped: string[] = [];
    for (const endpoint of eligible) {
      if (!endpoint.breaker.allow()) {
        skipped.push(endpoint.url);
        continue;
      }
      try {
        const result = await run(endpoint, digest);
        endpoint.breaker.succeeded();
        return result;
      } catch (err) {
        if (clientGone(req.signal)) {
          endpoint.breaker.released();
          throw err;
        }
        if (unavailable(err)) {
          endpoint.breaker.failed();
          failure = err;
          continue;
        }
        endpoint.breaker.succeeded();
        // A mirror without the content, or with content that does not verify: the next one may have it.
        if (endpoint.mirror && digest && (err instanceof NotFound || err instanceof DigestMismatch || err instanceof ManifestRejected)) {
          notFound = err;
          continue;
        }
        throw err;
      }
    }
    throw this.exhausted(req, digest, failure ?? notFound, skipped);
  }

  /** The error when no endpoint gave an answer: the last failure, saying which endpoints were skipped or not asked. */
  private exhausted(req: UpstreamRequest, digest: boolean, last: unknown, skipped: string[]): unknown {
    const key = this.registry.key;
    const untrusted = digest ? [] : this.endpoints.filter((endpoint) => !endpoint.tags).map((endpoint) => endpoint.url);
    const notes = [
      ...(skipped.length > 0 ? [`skipped while failing: ${skipped.join(', ')}`] : []),
      ...(untrusted.length > 0 ? [`not asked for tags: ${untrusted.join(', ')} (set tags: true on a mirror trusted to resolve them)`] : []),
    ];
    if (last instanceof UpstreamUnavailable && notes.length > 0) {
      return new UpstreamUnavailable(key, `${last.message}; ${notes.join('; ')}`, last.reachable, last.timedOut);
    }
    if (last !== undefined) return last;
    return new UpstreamUnavailable(key, `every endpoint of ${key} that may answer ${req.repository}${req.path} is failing; ${notes.join('; ')}`, false);
  }
}
