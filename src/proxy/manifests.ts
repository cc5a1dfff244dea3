import { DigestMismatch, ManifestRejected } from '../errors.js';
import { BodyTooLarge, drain, header, readBody } from '../upstream/http.js';
import { failureFor } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { digestOf } from './digest.js';
import type { ManifestAnswer, ManifestRequest } from './types.js';

/** Largest manifest relayed (the OCI spec's recommended minimum a registry must accept). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** What pullgate asks for when the client sent no Accept: every current manifest and index type. */
export const DEFAULT_MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

function mediaTypeOf(body: Buffer, contentType: string | undefined): string {
  if (contentType && contentType !== 'application/json' && contentType !== 'text/plain') return contentType.split(';')[0]?.trim() ?? contentType;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'mediaType' in parsed && typeof parsed.mediaType === 'string') return parsed.mediaType;
  } catch {
    // not JSON: fall through to the generic type
  }
  return contentType ?? 'application/json';
}

/** Fetches manifests from upstream: GET verified against a requested digest, HEAD without a body. */
export class UpstreamManifests {
  constructor(private readonly upstreams: Upstreams) {}

  async get(req: ManifestRequest): Promise<ManifestAnswer> {
    const client = this.upstreams.get(req.route.registry);
    const response = await client.request({
      method: req.method,
      repository: req.route.repository,
      path: `/manifests/${req.reference.value}`,
      headers: { accept: req.accept ?? DEFAULT_MANIFEST_ACCEPT },
      signal: req.signal,
    });
    const what = `manifest ${req.route.repository}:${req.reference.value}`;
    if (response.status !== 200) throw await failureFor(req.route.registry, response, 'manifest', what);
    const contentType = header(response.headers, 'content-type');
    const upstreamDigest = header(response.headers, 'docker-content-digest');
    const length = Number(header(response.headers, 'content-length'));
    if (req.method === 'HEAD') {
      drain(response.body);
      const digest = req.reference.kind === 'digest' ? req.reference.value : upstreamDigest;
      if (digest !== undefined && Number.isFinite(length) && contentType !== undefined) {
        return { digest, mediaType: contentType, size: length, body: undefined, source: 'upstream' };
      }
      const full = await this.get({ ...req, method: 'GET' });
      return { ...full, body: undefined };
    }
    let body: Buffer;
    try {
      body = await readBody(response.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new ManifestRejected(`${what} is larger than ${MAX_MANIFEST_BYTES} bytes`);
      throw err;
    }
    const digest = digestOf(body, req.reference.kind === 'digest' ? req.reference.value : upstreamDigest);
    if (req.reference.kind === 'digest' && digest !== req.reference.value) throw new DigestMismatch(req.reference.value, digest);
    return { digest, mediaType: mediaTypeOf(body, contentType), size: body.length, body, source: 'upstream' };
  }
}
