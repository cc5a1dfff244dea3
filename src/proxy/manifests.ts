import { DigestMismatch, ManifestRejected } from '../core/errors.js';
import { assertDigest } from '../routing/reference.js';
import { BodyTooLarge, drain, header, readBody, type HttpResponse } from '../upstream/http.js';
import { failureFor } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { accepts } from './accept.js';
import { digestOf } from './digest.js';
import { MAX_MANIFEST_BYTES, bareMediaType, isManifestMediaType, validateManifest } from './manifest-validate.js';
import type { ManifestAnswer, ManifestRequest } from './types.js';

export { MAX_MANIFEST_BYTES };

/** What pullgate asks for when the client sent no Accept: every current manifest and index type. */
export const DEFAULT_MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The header's digest when it is a well-formed one, else undefined. */
function wellFormedDigest(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    assertDigest(value);
    return value;
  } catch {
    return undefined;
  }
}

/**
 * Fetches manifests from upstream: GET validated (manifest-validate.ts) and verified against the
 * requested digest or, for a tag, the upstream's Docker-Content-Digest; HEAD without a body.
 */
export class UpstreamManifests {
  constructor(private readonly upstreams: Upstreams) {}

  /** One manifest request and its body, within `upstream.deadline` in all. */
  get(req: ManifestRequest): Promise<ManifestAnswer> {
    const what = `manifest ${req.route.repository}:${req.reference.value}`;
    const request = {
      method: req.method,
      repository: req.route.repository,
      path: `/manifests/${req.reference.value}`,
      headers: { accept: req.accept ?? DEFAULT_MANIFEST_ACCEPT },
      signal: req.signal,
    };
    return this.upstreams.get(req.route.registry).fetchWhole(request, `the ${what}`, (response) => this.answer(req, response, what));
  }

  private async answer(req: ManifestRequest, response: HttpResponse, what: string): Promise<ManifestAnswer> {
    const registry = req.route.registry;
    if (response.status !== 200) throw await failureFor(registry, response, 'manifest', what);
    const contentType = header(response.headers, 'content-type');
    const upstreamDigest = header(response.headers, 'docker-content-digest');
    const length = Number(header(response.headers, 'content-length'));
    if (req.method === 'HEAD') {
      drain(response.body);
      const digest = req.reference.kind === 'digest' ? req.reference.value : wellFormedDigest(upstreamDigest);
      const mediaType = bareMediaType(contentType);
      const plausible = isManifestMediaType(mediaType) && (req.reference.kind === 'digest' || accepts(req.accept, mediaType)) && Number.isInteger(length) && length >= 0 && length <= MAX_MANIFEST_BYTES;
      // Headers that do not describe a manifest the client may have: the GET decides (and validates).
      if (digest !== undefined && plausible) return { digest, mediaType, size: length, body: undefined, source: 'upstream' };
      const full = await this.get({ ...req, method: 'GET' });
      return { ...full, body: undefined };
    }
    const context = { registry, what };
    // By digest the content is fixed and verified, so any manifest type is relayed (as registries do);
    // by tag the upstream chose the document, so it must be one the request accepts.
    const accept = req.reference.kind === 'digest' ? undefined : req.accept;
    if (Number.isFinite(length) && length > MAX_MANIFEST_BYTES) {
      // Not drained: the connection is dropped rather than reading megabytes nobody will use.
      response.body.destroy();
      throw new ManifestRejected(registry, `${registry} sent an unusable ${what}: it is larger than ${MAX_MANIFEST_BYTES} bytes; nothing was cached`);
    }
    let body: Buffer;
    try {
      body = await readBody(response.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new ManifestRejected(registry, `${registry} sent an unusable ${what}: it is larger than ${MAX_MANIFEST_BYTES} bytes; nothing was cached`);
      throw err;
    }
    const mediaType = validateManifest(body, contentType, accept, context);
    if (req.reference.kind === 'digest') {
      const digest = digestOf(body, req.reference.value);
      if (digest !== req.reference.value) throw new DigestMismatch(req.reference.value, digest);
      return { digest, mediaType, size: body.length, body, source: 'upstream' };
    }
    if (upstreamDigest === undefined) {
      return { digest: digestOf(body), mediaType, size: body.length, body, source: 'upstream' };
    }
    const claimed = wellFormedDigest(upstreamDigest);
    if (claimed === undefined) {
      throw new ManifestRejected(registry, `${registry} sent a malformed Docker-Content-Digest for ${what}; nothing was cached`);
    }
    const digest = digestOf(body, claimed);
    if (digest !== claimed) throw new DigestMismatch(claimed, digest);
    return { digest, mediaType, size: body.length, body, source: 'upstream' };
  }
}
