import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { Clock } from '../core/deps.js';
import { OwnerUnavailable } from '../core/errors.js';
import type { SendBuffers } from '../http/send-chunks.js';
import { Membership, type Every, type Resolve } from './membership.js';
import { PeerClient, type OwnerBlob } from './peer-client.js';
import { PeerListener, type OwnerBlobs, type PeerListenerOptions } from './peer-listener.js';

/** Where a cold blob's bytes come from on this replica: the owner, or (undefined) this replica fetches it itself. */
export interface OwnerSource {
  fromOwner(registry: string, repository: string, digest: string): Promise<OwnerBlob | undefined>;
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
 * another member is read from that owner, which fetches it once for the whole cluster; when the owner
 * does not answer it is marked down for a while and this replica fetches upstream itself.
 */
export class ClusterNode implements OwnerSource {
  readonly membership: Membership;
  private readonly client: PeerClient;
  private listener: PeerListener | undefined;

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
  async start(blobs: OwnerBlobs, registries: PeerRegistries, sendBuffers: SendBuffers): Promise<string> {
    const listener = new PeerListener({ secret: this.config.secret, clock: this.deps.clock, logger: this.deps.logger, ...registries, blobs, sendBuffers });
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

  async fromOwner(registry: string, repository: string, digest: string): Promise<OwnerBlob | undefined> {
    if (this.listener === undefined) return undefined; // not started (an app that never listened): fetch here
    const owner = this.membership.owner(digest);
    if (owner === this.membership.self) return undefined;
    try {
      return await this.client.fetchBlob(owner, registry, repository, digest);
    } catch (err) {
      if (!(err instanceof OwnerUnavailable)) throw err;
      if (err.down) this.membership.markDown(owner, err.message);
      this.deps.logger.warn({ digest, owner, err: err.message }, 'cluster owner did not answer: fetching upstream here');
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
