// The peer table: every server the bench compares, in the order of the report's columns.
import { directPeer } from './direct.js';
import { distributionPeer } from './distribution.js';
import { nginxPeer } from './nginx.js';
import { nodeFloorCoresPeer, nodeFloorPeer } from './node-floor.js';
import { pullgateOneWorkerPeer, pullgatePeer } from './pullgate.js';
import type { Peer, PeerName } from './types.js';

/** One entry per peer; a new peer is one file and one line here (and a name in PEER_NAMES). */
export const PEERS: Record<PeerName, Peer> = {
  pullgate: pullgatePeer,
  'pullgate-1w': pullgateOneWorkerPeer,
  nginx: nginxPeer,
  node: nodeFloorPeer,
  'node-cores': nodeFloorCoresPeer,
  distribution: distributionPeer,
  direct: directPeer,
};
