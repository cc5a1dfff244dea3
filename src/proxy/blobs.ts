import { header } from '../upstream/http.js';
import { failureFor } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { BlobAnswer, BlobRequest } from './types.js';

/** Streams blobs straight from upstream (Range passed through), following CDN redirects. */
export class UpstreamBlobs {
  constructor(private readonly upstreams: Upstreams) {}

  async get(req: BlobRequest): Promise<BlobAnswer> {
    const client = this.upstreams.get(req.route.registry);
    const response = await client.request({
      method: req.method,
      repository: req.route.repository,
      path: `/blobs/${req.digest}`,
      headers: req.range ? { range: req.range } : {},
      signal: req.signal,
      redirects: 'storage',
    });
    if (response.status !== 200 && response.status !== 206) {
      throw await failureFor(req.route.registry, response, 'blob', `blob ${req.digest} in ${req.route.repository}`);
    }
    if (req.method === 'HEAD') response.body.resume();
    return {
      status: response.status,
      length: Number(header(response.headers, 'content-length') ?? Number.NaN),
      contentRange: header(response.headers, 'content-range'),
      body: req.method === 'HEAD' ? undefined : response.body,
      source: 'upstream',
    };
  }
}
