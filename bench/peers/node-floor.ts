// node:http alone as a bench peer: the same files with no routing, hooks or log — the ceiling for any Node server,
// with one process and with one process per core on one port (node:cluster, as pullgate's default `serve` runs).
import { availableParallelism } from 'node:os';
import { startNodeFloor } from '../lib/node-floor.js';
import { benchFiles, staticPath } from './static-files.js';
import { discard } from './stop.js';
import type { Peer, PeerName } from './types.js';

function nodeFloor(name: PeerName, label: string, workers: () => number): Peer {
  return {
    name,
    label,
    kind: 'files',
    relativeTo: 'nginx',
    serves: staticPath,
    async start(ctx, instance) {
      const node = await startNodeFloor(ctx.ws, instance, benchFiles(ctx), workers());
      return { host: node.url.slice('http://'.length), url: node.url, daemon: node.daemon, stop: () => discard(ctx.ws, instance, node.daemon) };
    },
  };
}

export const nodeFloorPeer: Peer = nodeFloor('node', 'node:http alone', () => 1);

/** As many processes as pullgate's default runs workers where no cgroup limits the cores. */
export const nodeFloorCoresPeer: Peer = nodeFloor('node-cores', 'node:http alone, a process per core', availableParallelism);
