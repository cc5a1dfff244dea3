import { describe, expect, it } from 'vitest';
import { ManifestRejected, NotFound } from '../../src/core/errors.js';
import { MAX_MANIFEST_BYTES, validateManifest } from '../../src/proxy/manifest-validate.js';
import { thrownAs } from './support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
const D = `sha256:${'a'.repeat(64)}`;
const context = { registry: 'reg.example', what: 'manifest team/app:1.0' };

const image = (extra: Record<string, unknown> = {}): Buffer =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 }, layers: [], ...extra }));
const index = (extra: Record<string, unknown> = {}): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], ...extra }));

/** The message of a valid manifest refused only because the request's Accept does not allow its type. */
function notAccepted(body: Buffer, contentType: string, accept: string): string {
  const err = thrownAs(() => validateManifest(body, contentType, accept, context), NotFound);
  expect(err.kind).toBe('manifest');
  return err.message;
}

function rejection(body: Buffer, contentType: string | undefined, accept?: string): string {
  const err = thrownAs(() => validateManifest(body, contentType, accept, context), ManifestRejected);
  expect(err.registry).toBe('reg.example');
  return err.message;
}

describe('validateManifest: accepted documents', () => {
  it('returns the media type of an OCI manifest and index', () => {
    expect(validateManifest(image(), OCI_MANIFEST, undefined, context)).toBe(OCI_MANIFEST);
    expect(validateManifest(index(), `${OCI_INDEX}; charset=utf-8`, `${OCI_INDEX}, ${OCI_MANIFEST}`, context)).toBe(OCI_INDEX);
  });

  it('takes the body\'s mediaType when the Content-Type is generic or absent', () => {
    expect(validateManifest(image(), 'application/json', undefined, context)).toBe(OCI_MANIFEST);
    expect(validateManifest(image(), undefined, undefined, context)).toBe(OCI_MANIFEST);
  });

  it('accepts an OCI manifest without a mediaType field when the Content-Type names it', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D, size: 2 }, layers: [] }));
    expect(validateManifest(body, OCI_MANIFEST, undefined, context)).toBe(OCI_MANIFEST);
  });

  it('relays docker schema 1 only to a client that asks for it', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'team/app', tag: '1.0', fsLayers: [], history: [], signatures: [] }));
    expect(validateManifest(body, SCHEMA1, `${SCHEMA1}, ${OCI_MANIFEST}`, context)).toBe(SCHEMA1);
    expect(notAccepted(body, SCHEMA1, OCI_MANIFEST)).toContain('Accept header does not allow');
  });
});

describe('validateManifest: rejected documents', () => {
  it('rejects a text/plain body (metadata-like content)', () => {
    expect(rejection(Buffer.from('ami-id\ninstance-id\n'), 'text/plain')).toContain('Content-Type text/plain is not a manifest type');
  });

  it('rejects a body that is not JSON, or not a JSON object', () => {
    expect(rejection(Buffer.from('<html>'), 'application/json')).toContain('not JSON');
    expect(rejection(Buffer.from('[1,2]'), OCI_MANIFEST)).toContain('not a JSON object');
    expect(rejection(Buffer.from('null'), OCI_MANIFEST)).toContain('not a JSON object');
  });

  it('rejects a document with both manifests and layers (CVE-2021-41190), whichever type it claims', () => {
    expect(rejection(image({ manifests: [] }), OCI_MANIFEST)).toContain('CVE-2021-41190');
    expect(rejection(index({ layers: [] }), OCI_INDEX)).toContain('CVE-2021-41190');
    expect(rejection(index({ layers: [], mediaType: undefined }), 'application/json')).toContain('CVE-2021-41190');
  });

  it('rejects a mediaType that disagrees with the Content-Type', () => {
    expect(rejection(image(), OCI_INDEX)).toContain('disagrees');
    expect(rejection(image({ mediaType: DOCKER_V2 }), OCI_MANIFEST)).toContain('disagrees');
  });

  it('rejects a body whose shape does not fit its type', () => {
    expect(rejection(index({ mediaType: OCI_MANIFEST }), 'application/json')).toContain('config');
    expect(rejection(image({ mediaType: OCI_INDEX, config: undefined, layers: undefined }), 'application/json')).toContain('manifests array');
    expect(rejection(image({ schemaVersion: 1 }), OCI_MANIFEST)).toContain('schemaVersion');
  });

  it('rejects unknown or missing media types', () => {
    expect(rejection(image(), 'application/vnd.oci.image.config.v1+json')).toContain('not a manifest type');
    expect(rejection(image({ mediaType: 'application/x-evil' }), 'application/json')).toContain('not a manifest type');
    expect(rejection(image({ mediaType: undefined }), 'application/json')).toContain('names a manifest type');
    expect(rejection(image({ mediaType: 7 }), OCI_MANIFEST)).toContain('not a string');
  });

  it('answers a valid type the request did not accept as unknown (404), not as an upstream error', () => {
    expect(notAccepted(index(), OCI_INDEX, OCI_MANIFEST)).toContain('Accept header does not allow');
    expect(notAccepted(index(), OCI_INDEX, 'garbage/%%%')).toContain(OCI_INDEX);
  });

  it('rejects a body over 4 MiB', () => {
    expect(rejection(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20), OCI_MANIFEST)).toContain('larger than');
  });
});
