import { Unsupported } from '../core/errors.js';

/** What a `/v2/...` path asks for, before the name is routed and validated. */
export type V2Target =
  | { endpoint: 'base' }
  | { endpoint: 'manifest'; name: string; reference: string }
  | { endpoint: 'blob'; name: string; digest: string }
  | { endpoint: 'tags'; name: string }
  | { endpoint: 'referrers'; name: string; digest: string };

const READ_ONLY = 'pullgate is a read-only pull-through mirror: push, delete and uploads are not supported';

/** Splits a `/v2/...` pathname (no query) into an endpoint; undefined when it is none of the pull API. */
export function parseV2Path(pathname: string): V2Target | undefined {
  if (pathname === '/v2' || pathname === '/v2/') return { endpoint: 'base' };
  if (/\/blobs\/uploads(\/[^/]*)?$/.test(pathname)) throw new Unsupported(READ_ONLY);
  const tags = /^\/v2\/(.+)\/tags\/list$/.exec(pathname);
  if (tags?.[1] !== undefined) return { endpoint: 'tags', name: tags[1] };
  const match = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(pathname);
  const [, name, kind, ref] = match ?? [];
  if (name === undefined || kind === undefined || ref === undefined) return undefined;
  if (kind === 'manifests') return { endpoint: 'manifest', name, reference: ref };
  if (kind === 'blobs') return { endpoint: 'blob', name, digest: ref };
  return { endpoint: 'referrers', name, digest: ref };
}

/** The message for push and delete methods. */
export const READ_ONLY_MESSAGE = READ_ONLY;
