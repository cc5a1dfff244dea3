// The distribution-API paths of the bench's content, served alike by pullgate and distribution's proxy.
import type { BenchContext } from '../lib/context.js';
import { biggestLayer } from '../lib/context.js';
import { ACCEPT, REPO, TAG } from '../lib/constants.js';
import type { Content, Served } from './types.js';

/** The path of `content` under /v2/ for a registry-shaped peer. */
export function registryPath(ctx: BenchContext, content: Content): Served {
  const img = ctx.images.small;
  switch (content) {
    case 'blob': {
      const layer = biggestLayer(img);
      return { path: `/v2/${REPO.small}/blobs/${layer.digest}`, digest: layer.digest };
    }
    case 'bigBlob': {
      const layer = biggestLayer(ctx.images.big);
      return { path: `/v2/${REPO.big}/blobs/${layer.digest}`, digest: layer.digest };
    }
    case 'tag':
      return { path: `/v2/${REPO.small}/manifests/${TAG}`, digest: img.manifestDigest, headers: { accept: ACCEPT } };
    case 'digest':
      return { path: `/v2/${REPO.small}/manifests/${img.manifestDigest}`, digest: img.manifestDigest, headers: { accept: ACCEPT } };
  }
}
