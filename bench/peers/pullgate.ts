// pullgate as a bench peer: `node dist/cli.js serve` with pullgate's own node flags, basic credentials upstream.
import type { PullgateConfigInput } from '../../support/pullgate.js';
import { startPullgate } from '../../support/pullgate.js';
import { PULLER, TAG_TTL } from '../lib/constants.js';
import { registryPath } from './registry-paths.js';
import { discard } from './stop.js';
import type { Peer, UpstreamEndpoint } from './types.js';

/** pullgate's config in front of `up`: one registry, the default, with the puller's login. */
export function pullgateConfig(up: UpstreamEndpoint): Omit<PullgateConfigInput, 'listen' | 'storagePath'> {
  return {
    defaultRegistry: up.host,
    registries: [{ key: up.host, url: up.url, username: PULLER.username, password: PULLER.password }],
    cache: { tagTTL: TAG_TTL },
  };
}

export const pullgatePeer: Peer = {
  name: 'pullgate',
  label: 'pullgate',
  kind: 'mirror',
  serves: registryPath,
  async start(ctx, instance, up) {
    // One process, as the figures of this peer mean (pullgate-2w is the one with workers).
    const pg = await startPullgate(ctx.ws, instance, pullgateConfig(up), { serveArgs: ['--workers', '1'] });
    return { host: pg.host, url: pg.url, daemon: pg.daemon, stop: () => discard(ctx.ws, instance, pg.daemon) };
  },
};
