import type { Readable } from 'node:stream';
import type { ChunkSource } from '../cache/chunk-source.js';
import type { Route } from '../routing/route.js';

/** A manifest request after routing and validation. */
export interface ManifestRequest {
  route: Route;
  reference: { kind: 'tag' | 'digest'; value: string };
  method: 'GET' | 'HEAD';
  accept: string | undefined;
  signal: AbortSignal;
}

/** A manifest answer; `body` is absent for HEAD. */
export interface ManifestAnswer {
  digest: string;
  mediaType: string;
  size: number;
  body: Buffer | undefined;
  /** Where it came from, for the request log and metrics. */
  source: 'upstream' | 'cache' | 'stale';
}

export interface BlobRequest {
  route: Route;
  digest: string;
  method: 'GET' | 'HEAD';
  range: string | undefined;
  signal: AbortSignal;
  /** Asked by a cluster peer of this replica as the digest's owner: never forwarded to another peer. */
  fromPeer?: boolean;
}

/** A blob answer; `body` is absent for HEAD: a ChunkSource from the cache, a stream passed through from upstream otherwise. */
export interface BlobAnswer {
  /** 307: the client is sent to `location`, a short-lived presigned URL of the shared store (`storage.s3.redirect`). */
  status: 200 | 206 | 307;
  location?: string;
  /** Bytes in this response (the range length for 206). */
  length: number;
  contentRange: string | undefined;
  body: ChunkSource | Readable | undefined;
  /** Where the bytes come from: upstream, this cache, another client's fill, the shared store, or (cluster) the digest's owner. */
  source: 'upstream' | 'cache' | 'coalesced' | 'shared' | 'peer';
}

export interface JsonAnswer {
  body: Buffer;
  contentType: string;
  /** Extra response headers (Link for pagination, OCI-Filters-Applied). */
  headers: Record<string, string>;
}
