import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { Clock } from '../core/deps.js';
import { OwnerUnavailable } from '../core/errors.js';
import type { SendBuffers } from '../http/send-chunks.js';
import { Membership, type Every, type Resolve } from './membership.js';
import { followReports } from './fill-follower.js';
import { PeerClient } from './peer-client.js';
import type { OwnerAnswer, OwnerSource } from '../proxy/types.js';

export type { OwnerAnswer, OwnerSource };
import { PeerListener, type OwnerBlobs, type OwnerFills, type PeerListenerOptions } from './peer-listener.js';

/** What the owner side serves to peers: its blob pipeline, its fills (for workers of this host), and whether a digest is stored. */
export interface OwnerServices {
  blobs: OwnerBlobs;
  fills: OwnerFills;
  stored: (digest: string) => boolean;
}

/**
 * True when `owner` is another worker of this host (`serve --workers`: members are unix sockets, and the
 * workers share one storage directory and index), whose fill can be read from the shared disk.
 */
function sameHost(self: string, owner: string): boolean {
  return self.startsWith('unix:') && owner.startsWith('unix:');
}

export interface ClusterNodeDeps {
  clock: Clock;
  logger: Logger;
  resolve?: Resolve;
  every?: Every;
  localAddresses?: () => string[];
  /** For tests; by default the peer client keeps its own Agents (never the upstream dispatcher, `Deps.dispatcher`). */
  peerDispatcher?: Dispatcher;
}

/** Which registries and repositories peers may ask this replica for: the configured keys, and each registry's fetch policy. */
export type PeerRegistries = Pick<PeerListenerOptions, 'knownRegistry' | 'fetchVerdict'>;

export interface ClusterNodeOptions {
  /** Longest wait for an owner's response headers and between its body chunks (the upstream timeout). */
  timeoutMs: number;
}

/**
 * This replica's part in the cluster: who the members are, the internal listener where peers ask it for
 * the digests it owns, and the client that asks owners for the others. A cold blob whose owner is
 * another member is read from that owner, which fetches it once for the whole cluster — streamed from a
 * replica on another host, read from the shared disk when the owner is another worker of this host;
 * when the owner does not answer it is marked down for a while and this replica fetches upstream itself.
 */
export class ClusterNode implements OwnerSource {
  readonly membership: Membership;
  private readonly client: PeerClient;
  private listener: PeerListener | undefined;
  private stored: (digest: string) => boolean = () => false;

  constructor(
    private readonly config: ClusterConfig,
    private readonly deps: ClusterNodeDeps,
    options: ClusterNodeOptions,
  ) {
    this.membership = new Membership(config, deps);
    this.client = new PeerClient({
      secret: config.secret,
      clock: deps.clock,
      headersTimeoutMs: options.timeoutMs,
      bodyTimeoutMs: options.timeoutMs,
      ...(deps.peerDispatcher !== undefined ? { dispatcher: deps.peerDispatcher } : {}),
    });
  }

  /**
   * Opens the internal listener (serving `blobs`, the owner's own pipeline) and finds the members;
   * throws ConfigError when this replica cannot tell which peer it is.
   */
  async start(owner: OwnerServices, registries: PeerRegistries, sendBuffers: SendBuffers): Promise<string> {
    const listener = new PeerListener({ secret: this.config.secret, clock: this.deps.clock, logger: this.deps.logger, ...registries, ...owner, sendBuffers });
    this.stored = owner.stored;
    // A worker of `serve --workers` is `unix:<socket>` and listens there; a replica listens on cluster.listen.
    const self = this.config.self;
    const address = await listener.listen(self?.startsWith('unix:') === true ? { path: self.slice('unix:'.length) } : this.config.listen);
    this.listener = listener;
    try {
      await this.membership.start();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.deps.logger.info({ cluster: address, self: this.membership.self }, 'cluster listener for peers');
    return address;
  }

  async fromOwner(registry: string, repository: string, digest: string): Promise<OwnerAnswer | undefined> {
    if (this.listener === undefined) return undefined; // not started (an app that never listened): fetch here
    const self = this.membership.self;
    const owner = this.membership.owner(digest);
    if (owner === self) return undefined;
    try {
      const followed = sameHost(self, owner) ? await this.follow(owner, registry, repository, digest) : undefined;
      return followed ?? { kind: 'bytes', blob: await this.client.fetchBlob(owner, registry, repository, digest) };
    } catch (err) {
      if (!(err instanceof OwnerUnavailable)) throw err;
      if (err.down) this.membership.markDown(owner, err.message);
      this.deps.logger.warn({ digest, owner, err: err.message }, 'cluster owner did not answer: fetching upstream here');
      return undefined;
    }
  }

  /**
   * Follows the fill of `owner`, a worker of this host, from its progress reports; undefined when its
   * bytes must be streamed instead (its fill is not on disk, or what it said cannot be used here). Throws
   * OwnerUnavailable when the owner is down.
   */
  private async follow(owner: string, registry: string, repository: string, digest: string): Promise<OwnerAnswer | undefined> {
    try {
      const answer = await followReports(await this.client.followFill(owner, registry, repository, digest), owner, digest, registry, repository);
      if (answer.kind === 'fill') return answer;
      // "Stored" is read from the index this host shares; a worker that does not share it is asked for the bytes.
      return answer.kind === 'cached' && this.stored(digest) ? answer : undefined;
    } catch (err) {
      if (!(err instanceof OwnerUnavailable) || err.down) throw err;
      this.deps.logger.warn({ digest, owner, err: err.message }, 'cluster worker could not share its fill: streaming its bytes');
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.membership.stop();
    await this.listener?.close();
    this.listener = undefined;
    await this.client.close();
  }
}
