// What a bench peer is: something that starts, serves the bench's content at known paths, and stops.
import type { Daemon } from '../../support/proc.js';
import type { BenchContext } from '../lib/context.js';

/**
 * The peers of the table, in the order of its columns: pullgate as `npm start` runs it (one worker per usable core)
 * and with `--workers 1`; nginx (worker_processes auto); node:http alone in one process and in one per core;
 * distribution's proxy; the upstream itself.
 */
export const PEER_NAMES = ['pullgate', 'pullgate-1w', 'nginx', 'node', 'node-cores', 'distribution', 'direct'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** What a measure asks a peer for: the 20 MiB blob, the 200 MiB blob, a manifest by tag, a manifest by digest. */
export type Content = 'blob' | 'bigBlob' | 'tag' | 'digest';

/** Where a peer reaches the upstream: the registry itself, or a shaped link in front of it. */
export interface UpstreamEndpoint {
  host: string;
  url: string;
}

/** What a peer answers for one kind of content. */
export interface Served {
  path: string;
  /** The digest of the body it answers with (checked before every figure). */
  digest: string;
  /** Request headers the answer needs (Accept for manifests). */
  headers?: Record<string, string>;
  /** What is served instead, when it is not the same thing (nginx answers "manifest by tag" with a 3-byte file). */
  standIn?: string;
}

/** One running instance of a peer. */
export interface RunningPeer {
  /** host:port, as an image reference names it. */
  host: string;
  url: string;
  /** The process whose CPU (with its descendants') and RSS a measure may read (undefined for an in-process relay). */
  daemon: Daemon | undefined;
  /** `user:password` a client needs (only the upstream itself asks for credentials). */
  creds?: string;
  /** Stops it and deletes its storage (its log stays until the end). */
  stop(): Promise<void>;
}

/** A bench peer: one entry of the peer table. */
export interface Peer {
  name: PeerName;
  /** Column header. */
  label: string;
  /** mirror: pulls through from the upstream; files: static copies of the bench's content; upstream: the registry itself. */
  kind: 'mirror' | 'files' | 'upstream';
  /** Shown beside each figure as a ratio to this peer (node:http alone as a share of nginx). */
  relativeTo?: PeerName;
  /** What it answers for `content`; undefined when it does not serve it. */
  serves(ctx: BenchContext, content: Content): Served | undefined;
  /** A fresh instance named `instance` in the workspace, reaching the upstream at `upstream`. */
  start(ctx: BenchContext, instance: string, upstream: UpstreamEndpoint): Promise<RunningPeer>;
  /** Its version line for the report header (undefined for pullgate itself). */
  version?(): Promise<string>;
}
