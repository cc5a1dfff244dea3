import type { RawConfig } from './schema.js';

/** One entry of `cluster.peers`: a fixed address, or a DNS name whose every address is a peer (a headless Service). */
export type PeerSource = { kind: 'static'; address: string } | { kind: 'dns'; name: string; port: number };

/** `cluster:` as resolved. */
export interface ClusterConfig {
  /** The internal listener, for peers only. */
  listen: { host: string; port: number };
  peers: PeerSource[];
  /** Shared secret that peers present to each other; never logged or printed. */
  secret: string;
  /** This replica's address as peers know it, when the listen address alone cannot tell. */
  self: string | undefined;
}

/** Shortest `cluster.secret` accepted: a guessable secret would open the internal listener. */
export const MIN_CLUSTER_SECRET = 16;

/** Resolves `cluster:`; problems are pushed with their config path. */
export function resolveCluster(
  raw: NonNullable<RawConfig['cluster']>,
  parseListen: (text: string) => { host: string; port: number },
  problems: string[],
): ClusterConfig {
  if (raw.secret.length < MIN_CLUSTER_SECRET) {
    problems.push(`cluster.secret: must be at least ${MIN_CLUSTER_SECRET} characters (e.g. from \`openssl rand -hex 32\`); it is ${raw.secret === '' ? 'empty or unset' : 'too short'}`);
  }
  let listen = { host: '0.0.0.0', port: 5001 };
  try {
    listen = parseListen(raw.listen);
  } catch (err) {
    problems.push(`cluster.${(err as Error).message}`);
  }
  const peers = raw.peers.map((text): PeerSource => {
    if (!text.startsWith('dns:')) return { kind: 'static', address: text };
    const rest = text.slice('dns:'.length);
    const colon = rest.lastIndexOf(':');
    return { kind: 'dns', name: rest.slice(0, colon), port: Number(rest.slice(colon + 1)) };
  });
  return { listen, peers, secret: raw.secret, self: raw.self };
}
