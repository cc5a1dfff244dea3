import { ManifestRejected, NotFound } from '../core/errors.js';
import { accepts } from './accept.js';

/** Largest manifest relayed (the OCI spec's recommended minimum a registry must accept). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

type ManifestShape = 'image' | 'index' | 'schema1';

/**
 * The manifest and index media types pullgate relays, and the shape each must have. Docker schema 1
 * stays, for old registries and clients that still ask for it, but only when the client's Accept names it.
 */
const MANIFEST_SHAPES: Readonly<Record<string, ManifestShape>> = {
  'application/vnd.oci.image.manifest.v1+json': 'image',
  'application/vnd.oci.image.index.v1+json': 'index',
  'application/vnd.docker.distribution.manifest.v2+json': 'image',
  'application/vnd.docker.distribution.manifest.list.v2+json': 'index',
  'application/vnd.docker.distribution.manifest.v1+json': 'schema1',
  'application/vnd.docker.distribution.manifest.v1+prettyjws': 'schema1',
};

/** Content-Types that say nothing about the document: the body's `mediaType` decides. */
const GENERIC_CONTENT_TYPES = new Set(['', 'application/json']);

/** True for a media type pullgate relays as a manifest or index. */
export function isManifestMediaType(mediaType: string): boolean {
  return Object.hasOwn(MANIFEST_SHAPES, mediaType);
}

/** `type/subtype` of a Content-Type header, lower-case, without parameters. */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType?.split(';')[0] ?? '').trim().toLowerCase();
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** Why the document does not have the shape of `shape`, or undefined when it has. */
function shapeProblem(doc: Record<string, unknown>, shape: ManifestShape): string | undefined {
  const has = (field: string): boolean => Object.hasOwn(doc, field);
  if (shape === 'schema1') {
    if (doc.schemaVersion !== 1) return 'a schema 1 manifest must have schemaVersion 1';
    if (!Array.isArray(doc.fsLayers)) return 'a schema 1 manifest must have an fsLayers array';
    return undefined;
  }
  if (doc.schemaVersion !== 2) return 'schemaVersion must be 2';
  if (shape === 'index') {
    if (!Array.isArray(doc.manifests)) return 'an index must have a manifests array';
    if (has('layers') || has('config')) return 'an index must not have layers or config';
    return undefined;
  }
  if (record(doc.config) === undefined) return 'an image manifest must have a config descriptor';
  if (!Array.isArray(doc.layers)) return 'an image manifest must have a layers array';
  if (has('manifests')) return 'an image manifest must not have manifests';
  return undefined;
}

/**
 * Checks a manifest body from upstream before it is served or cached, and returns its media type:
 * at most 4 MiB, a JSON object, of a known manifest or index type (from the Content-Type, or the
 * body's `mediaType` when the header is generic) that `accept` allows (undefined allows all), with the two
 * agreeing and the body shaped like that type — never both `manifests` and `layers`
 * (CVE-2021-41190). Throws ManifestRejected (502 UPSTREAM_ERROR) otherwise, and NotFound (404
 * MANIFEST_UNKNOWN, as distribution answers) for a valid manifest the client's Accept does not allow.
 */
export function validateManifest(
  body: Buffer,
  contentType: string | undefined,
  accept: string | undefined,
  context: { registry: string; what: string },
): string {
  const reject = (why: string): never => {
    throw new ManifestRejected(context.registry, `${context.registry} sent an unusable ${context.what}: ${why}; nothing was cached`);
  };
  if (body.length > MAX_MANIFEST_BYTES) reject(`it is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const headerType = bareMediaType(contentType);
  const generic = GENERIC_CONTENT_TYPES.has(headerType);
  if (!generic && !isManifestMediaType(headerType)) reject(`Content-Type ${headerType.slice(0, 100)} is not a manifest type`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return reject('the body is not JSON');
  }
  const doc = record(parsed) ?? reject('the body is not a JSON object');
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== 'string') reject('its mediaType field is not a string');
  const fieldType = typeof field === 'string' ? field : undefined;
  if (fieldType !== undefined && !isManifestMediaType(fieldType)) reject(`its mediaType ${fieldType.slice(0, 100)} is not a manifest type`);
  if (!generic && fieldType !== undefined && fieldType !== headerType) {
    reject(`its mediaType ${fieldType} disagrees with its Content-Type ${headerType}`);
  }
  if (Object.hasOwn(doc, 'manifests') && Object.hasOwn(doc, 'layers')) {
    reject('it has both manifests and layers, so it could be read as an index or an image (CVE-2021-41190)');
  }
  const mediaType = generic ? fieldType : headerType;
  if (mediaType === undefined) return reject('neither its Content-Type nor its mediaType field names a manifest type');
  const shape = MANIFEST_SHAPES[mediaType];
  const problem = shape === undefined ? 'unknown type' : shapeProblem(doc, shape);
  if (problem !== undefined) reject(`${mediaType}: ${problem}`);
  // The client's choice, not upstream's fault: answered as distribution does (MANIFEST_UNKNOWN, 404).
  if (!accepts(accept, mediaType)) {
    throw new NotFound('manifest', `${context.what} is ${mediaType}, which the request's Accept header does not allow`);
  }
  return mediaType;
}
