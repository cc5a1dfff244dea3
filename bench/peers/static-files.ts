// The static-file peers' copy of the bench's content: the warm blob, the manifest, and a 3-byte file that stands
// in for "manifest by tag" (the least any server can answer with).
import { sha256Digest } from '../../support/oci-layout.js';
import { type BenchContext, biggestLayer } from '../lib/context.js';
import type { Content, Served } from './types.js';

const SMALL = Buffer.from('ok\n');

/** The files (name -> bytes) a static-file peer serves. */
export function benchFiles(ctx: BenchContext): Map<string, Buffer> {
  const layer = biggestLayer(ctx.images.small);
  const bytes = ctx.images.small.blobs.get(layer.digest);
  if (bytes === undefined) throw new Error('bench/small layer bytes missing');
  return new Map([
    ['small.txt', SMALL],
    ['manifest.json', ctx.images.small.manifest],
    ['blob.bin', bytes],
  ]);
}

/** Where a static-file peer serves `content`. */
export function staticPath(ctx: BenchContext, content: Content): Served | undefined {
  switch (content) {
    case 'blob':
      return { path: '/blob.bin', digest: biggestLayer(ctx.images.small).digest };
    case 'bigBlob':
      return undefined;
    case 'tag':
      return { path: '/small.txt', digest: sha256Digest(SMALL), standIn: '3-byte file' };
    case 'digest':
      return { path: '/manifest.json', digest: ctx.images.small.manifestDigest, standIn: 'manifest file' };
  }
}
