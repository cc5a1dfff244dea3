// The peer table: every server the bench compares, in the order of the report's columns.
import { directPeer } from './direct.js';
import { distributionPeer } from './distribution.js';
import { nginxPeer } from './nginx.js';
import { nodeFloorPeer, nodeFloorWorkersPeer } from './node-floor.js';
import { pullgatePeer } from './pullgate.js';
import { pullgateWorkersPeer } from './pullgate-workers.js';
import type { Peer, PeerName } from './types.js';

/** One entry per peer; a new peer is one file and one line here (and a name in PEER_NAMES). */
export const PEERS: Record<PeerName, Peer> = {
  pullgate: pullgatePeer,
  'pullgate-2w': pullgateWorkersPeer,
  nginx: nginxPeer,
  node: nodeFloorPeer,
  'node-2w': nodeFloorWorkersPeer,
  distribution: distributionPeer,
  direct: directPeer,
};
