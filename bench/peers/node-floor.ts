// node:http alone as a bench peer: the same files with no routing, hooks or log — the ceiling for any Node server,
// with one process and with two on one port (as `pullgate serve --workers 2` runs).
import { startNodeFloor } from '../lib/node-floor.js';
import { benchFiles, staticPath } from './static-files.js';
import { discard } from './stop.js';
import type { Peer, PeerName } from './types.js';

function nodeFloor(name: PeerName, label: string, workers: number): Peer {
  return {
    name,
    label,
    kind: 'files',
    relativeTo: 'nginx',
    // The bench's one pid is the primary, which only hands out connections: no CPU figure for two workers.
    multiProcess: workers > 1,
    serves: staticPath,
    async start(ctx, instance) {
      const node = await startNodeFloor(ctx.ws, instance, benchFiles(ctx), workers);
      return { host: node.url.slice('http://'.length), url: node.url, daemon: node.daemon, stop: () => discard(ctx.ws, instance, node.daemon) };
    },
  };
}

export const nodeFloorPeer: Peer = nodeFloor('node', 'node:http alone', 1);

export const nodeFloorWorkersPeer: Peer = nodeFloor('node-2w', 'node:http alone ×2 processes', 2);
