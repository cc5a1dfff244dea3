// pullgate as a bench peer: `node dist/cli.js serve` with the start script's node flags and basic credentials
// upstream — as `npm start` runs it (no --workers: one worker per usable core), and as one process (--workers 1).
import type { PullgateConfigInput } from '../../support/pullgate.js';
import { startPullgate } from '../../support/pullgate.js';
import { PULLER, TAG_TTL } from '../lib/constants.js';
import { registryPath } from './registry-paths.js';
import { discard } from './stop.js';
import type { Peer, PeerName, UpstreamEndpoint } from './types.js';

/** pullgate's config in front of `up`: one registry, the default, with the puller's login. */
export function pullgateConfig(up: UpstreamEndpoint): Omit<PullgateConfigInput, 'listen' | 'storagePath'> {
  return {
    defaultRegistry: up.host,
    registries: [{ key: up.host, url: up.url, username: PULLER.username, password: PULLER.password }],
    cache: { tagTTL: TAG_TTL },
  };
}

/** A pullgate peer with `workers` ('default': no --workers flag, pullgate's own choice). */
function pullgate(name: PeerName, label: string, workers: number | 'default'): Peer {
  return {
    name,
    label,
    kind: 'mirror',
    serves: registryPath,
    async start(ctx, instance, up) {
      const pg = await startPullgate(ctx.ws, instance, pullgateConfig(up), { workers });
      return { host: pg.host, url: pg.url, daemon: pg.daemon, stop: () => discard(ctx.ws, instance, pg.daemon) };
    },
  };
}

/** What users run (`npm start`, the image): a primary and one worker per usable core; its CPU is the whole tree's. */
export const pullgatePeer: Peer = pullgate('pullgate', 'pullgate', 'default');

/** One process (`serve --workers 1`): the figures per process (RSS, growth) and the history before issue 21. */
export const pullgateOneWorkerPeer: Peer = pullgate('pullgate-1w', 'pullgate --workers 1', 1);
