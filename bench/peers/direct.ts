// The upstream itself as a bench peer: what a client gets pulling without any mirror (with the puller's login).
import { PULLER } from '../lib/constants.js';
import { registryPath } from './registry-paths.js';
import type { Peer } from './types.js';

export const directPeer: Peer = {
  name: 'direct',
  label: 'direct (upstream)',
  kind: 'upstream',
  serves: registryPath,
  // Nothing to start: the upstream (or the shaped link in front of it) is already there, and outlives the measure.
  start(ctx, _instance, up) {
    return Promise.resolve({
      host: up.host,
      url: up.url,
      daemon: up.host === ctx.upstream.host ? ctx.upstream.daemon : undefined,
      creds: `${PULLER.username}:${PULLER.password}`,
      stop: () => Promise.resolve(),
    });
  },
};
