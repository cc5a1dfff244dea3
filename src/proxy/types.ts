import type { Readable } from 'node:stream';
import type { BlobFill } from '../cache/blob-fill.js';
import type { ChunkSource } from '../cache/chunk-source.js';
import type { RemoteFill } from '../cache/remote-fill.js';
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
  /**
   * Where the bytes come from: upstream, this cache, another client's fill, the shared store, or (cluster)
   * the digest's owner — streamed from another replica ('peer'), or read from the fill of another worker
   * of this host, from the shared disk ('worker').
   */
  source: 'upstream' | 'cache' | 'coalesced' | 'shared' | 'peer' | 'worker';
}

/**
 * The owner's answer to a follower on its host: the blob is stored, or here is the fill (started or joined)
 * whose temp file the follower can read, or the fill is not written to disk (the follower asks for its bytes).
 */
export type OwnedFill = { kind: 'cached' } | { kind: 'uncached' } | { kind: 'fill'; fill: BlobFill };

export interface JsonAnswer {
  body: Buffer;
  contentType: string;
  /** Extra response headers (Link for pagination, OCI-Filters-Applied). */
  headers: Record<string, string>;
}

/** A blob as the owner streams it: the body (verified by the caller's fill) and its announced size. */
export interface OwnerBlob {
  body: Readable;
  size: number | undefined;
}

/**
 * The owner's answer for a cold blob: its bytes streamed over the peer connection (another host), its
 * fill followed from the shared disk (another worker of this host), or word that it is stored already
 * (this host's index has it).
 */
export type OwnerAnswer = { kind: 'bytes'; blob: OwnerBlob } | { kind: 'fill'; fill: RemoteFill } | { kind: 'cached' };

/** Where a cold blob's bytes come from on this replica: the owner, or (undefined) this replica fetches it itself. */
export interface OwnerSource {
  fromOwner(registry: string, repository: string, digest: string): Promise<OwnerAnswer | undefined>;
}
