import { NotFound, RangeNotSatisfiable, UpstreamProtocolError, UpstreamRateLimited, UpstreamUnavailable, type NotFoundKind } from '../core/errors.js';
import { drain, header, upstreamErrorMessage, type HttpResponse } from './http.js';

/**
 * Turns an upstream answer that is not a success into the matching domain error, consuming its
 * body. 404 keeps upstream's own `*_UNKNOWN` code where it sent one.
 */
export async function failureFor(registry: string, response: HttpResponse, kind: NotFoundKind, what: string): Promise<Error> {
  const { status } = response;
  if (status === 404) {
    const { code, message } = await upstreamErrorMessage(response.body);
    const found: NotFoundKind = code === 'NAME_UNKNOWN' ? 'name' : kind;
    return new NotFound(found, `${what} not found on ${registry}${message ? `: ${message}` : ''}`);
  }
  drain(response.body);
  if (status === 429) return new UpstreamRateLimited(registry, header(response.headers, 'retry-after'));
  if (status === 416) return new RangeNotSatisfiable(Number(/\/(\d+)$/.exec(header(response.headers, 'content-range') ?? '')?.[1] ?? 0));
  if (status >= 500) return new UpstreamUnavailable(registry, `${registry} answered ${status} for ${what}`, true);
  return new UpstreamProtocolError(registry, `${registry} answered ${status} for ${what}`);
}
