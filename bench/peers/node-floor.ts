// node:http alone as a bench peer: the same files with no routing, hooks or log — the ceiling for any Node server.
import { startNodeFloor } from '../lib/node-floor.js';
import { benchFiles, staticPath } from './static-files.js';
import { discard } from './stop.js';
import type { Peer } from './types.js';

export const nodeFloorPeer: Peer = {
  name: 'node',
  label: 'node:http alone',
  kind: 'files',
  relativeTo: 'nginx',
  serves: staticPath,
  async start(ctx, instance) {
    const node = await startNodeFloor(ctx.ws, instance, benchFiles(ctx));
    return { host: node.url.slice('http://'.length), url: node.url, daemon: node.daemon, stop: () => discard(ctx.ws, instance, node.daemon) };
  },
};
