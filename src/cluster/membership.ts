import { lookup } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { Clock } from '../core/deps.js';
import { ConfigError, describeError } from '../core/errors.js';
import { ownerOf, rank } from './rendezvous.js';

/** Every address a DNS name resolves to (A and AAAA); injected so tests need no resolver. */
export type Resolve = (name: string) => Promise<string[]>;

/** Runs `task` every `ms` until the returned function is called; injected so tests drive refreshes themselves. */
export type Every = (ms: number, task: () => void) => () => void;

/** How often DNS peers are resolved again (a headless Service's endpoints change as pods come and go). */
export const REFRESH_MS = 10_000;
/** How long a peer that failed to answer is left out of ownership before it is asked again. */
export const DOWN_MS = 15_000;

export interface MembershipDeps {
  clock: Clock;
  logger: Logger;
  resolve?: Resolve;
  every?: Every;
  /** This host's interface addresses, to find itself when cluster.listen is a wildcard. */
  localAddresses?: () => string[];
  refreshMs?: number;
  downMs?: number;
}

const systemResolve: Resolve = async (name) => (await lookup(name, { all: true })).map((entry) => entry.address);

const systemEvery: Every = (ms, task) => {
  const timer = setInterval(task, ms);
  timer.unref();
  return () => clearInterval(timer);
};

function systemAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}

/** A member's id as every replica spells it: `host:port` (IPv6 in brackets, host lower-cased), or `unix:<path>`. */
export function memberId(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIPv6(bare) ? `[${bare.toLowerCase()}]:${port}` : `${bare.toLowerCase()}:${port}`;
}

/** Normalises a `host:port`, `[v6]:port` or `unix:<path>` address into a member id; throws on anything else. */
export function parseMember(address: string): string {
  if (address.startsWith('unix:')) return address;
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(address.trim());
  if (match === null || match[1] === undefined || match[2] === undefined) throw new Error(`"${address}" is not host:port`);
  return memberId(match[1], Number(match[2]));
}

function wildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/**
 * The live peer set of this replica: static peers and DNS names re-resolved periodically, which of them
 * is this replica, and which peers are marked down for a while because they failed to answer (ownership
 * then moves to the next member by rendezvous hashing). Self is always a member and never down.
 */
export class Membership {
  private readonly resolve: Resolve;
  private readonly every: Every;
  private readonly localAddresses: () => string[];
  private readonly refreshMs: number;
  private readonly downMs: number;
  /** Ids resolved for each DNS peer source (`name:port`), kept when a later resolution fails. */
  private readonly resolved = new Map<string, string[]>();
  /** Member id → when it may be asked again. */
  private readonly downUntil = new Map<string, number>();
  private selfId: string | undefined;
  private known: string[] = [];
  private stopTimer: (() => void) | undefined;

  constructor(
    private readonly cluster: Pick<ClusterConfig, 'peers' | 'listen' | 'self'>,
    private readonly deps: MembershipDeps,
  ) {
    this.resolve = deps.resolve ?? systemResolve;
    this.every = deps.every ?? systemEvery;
    this.localAddresses = deps.localAddresses ?? systemAddresses;
    this.refreshMs = deps.refreshMs ?? REFRESH_MS;
    this.downMs = deps.downMs ?? DOWN_MS;
  }

  /** Resolves the peers, finds this replica among them (throws ConfigError when it cannot) and starts periodic refreshes. */
  async start(): Promise<void> {
    await this.refresh();
    this.selfId = this.findSelf();
    this.update();
    if (this.cluster.peers.some((peer) => peer.kind === 'dns')) {
      this.stopTimer = this.every(this.refreshMs, () => void this.refresh());
    }
    this.deps.logger.info({ self: this.selfId, members: this.known }, 'cluster membership');
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
  }

  /** This replica's member id. */
  get self(): string {
    if (this.selfId === undefined) throw new Error('cluster membership was not started');
    return this.selfId;
  }

  /** Every known member, self included, in id order. */
  members(): string[] {
    return this.known;
  }

  /** Members not marked down, self included. */
  live(): string[] {
    const now = this.deps.clock.now();
    return this.known.filter((id) => id === this.selfId || (this.downUntil.get(id) ?? 0) <= now);
  }

  /** The live member that owns `digest`. */
  owner(digest: string): string {
    return ownerOf(digest, this.live()) ?? this.self;
  }

  /** Live members in the order they would own `digest`. */
  rank(digest: string): string[] {
    return rank(digest, this.live());
  }

  /** Leaves `id` out of ownership for a while (it refused a connection, timed out or failed). */
  markDown(id: string, reason: string): void {
    if (id === this.selfId) return;
    const until = this.deps.clock.now() + this.downMs;
    if ((this.downUntil.get(id) ?? 0) <= this.deps.clock.now()) this.deps.logger.warn({ peer: id, reason, forMs: this.downMs }, 'cluster peer marked down');
    this.downUntil.set(id, until);
  }

  /** Resolves every DNS peer again; a name that fails keeps its previous addresses. */
  async refresh(): Promise<void> {
    for (const peer of this.cluster.peers) {
      if (peer.kind !== 'dns') continue;
      const key = `${peer.name}:${peer.port}`;
      try {
        const addresses = await this.resolve(peer.name);
        this.resolved.set(key, addresses.map((address) => memberId(address, peer.port)));
      } catch (err) {
        this.deps.logger.warn({ peers: key, err: describeError(err) }, 'cluster peers: DNS name did not resolve; keeping the last answer');
      }
    }
    if (this.selfId !== undefined) this.update();
  }

  /** Peers from the config as resolved now (self not added). */
  private peerIds(): string[] {
    const ids: string[] = [];
    for (const peer of this.cluster.peers) {
      if (peer.kind === 'static') ids.push(parseMember(peer.address));
      else ids.push(...(this.resolved.get(`${peer.name}:${peer.port}`) ?? []));
    }
    return ids;
  }

  private update(): void {
    const next = [...new Set([...this.peerIds(), this.self])].sort();
    const changed = next.length !== this.known.length || next.some((id, i) => id !== this.known[i]);
    const before = this.known;
    this.known = next;
    if (changed && before.length > 0) this.deps.logger.info({ members: next }, 'cluster membership changed');
    for (const id of this.downUntil.keys()) if (!next.includes(id)) this.downUntil.delete(id);
  }

  /** cluster.self, else the one peer that is cluster.listen (or one of this host's addresses when listen is a wildcard). */
  private findSelf(): string {
    if (this.cluster.self !== undefined && this.cluster.self !== '') {
      try {
        return parseMember(this.cluster.self);
      } catch (err) {
        throw new ConfigError(`cluster.self: ${(err as Error).message}`);
      }
    }
    const { host, port } = this.cluster.listen;
    const listen = `${host}:${port}`;
    const peers = this.peerIds();
    const shown = peers.length === 0 ? 'none resolved' : peers.join(', ');
    if (!wildcard(host)) {
      const id = memberId(host, port);
      const candidates = host === 'localhost' ? [id, memberId('127.0.0.1', port), memberId('::1', port)] : [id];
      const found = candidates.find((candidate) => peers.includes(candidate));
      if (found !== undefined) return found;
      // A pod is not yet in its headless Service's answer while it starts: trust an explicit listen address then.
      if (this.cluster.peers.some((peer) => peer.kind === 'dns')) return id;
      throw new ConfigError(`cluster: this replica listens on ${listen}, which is not among cluster.peers (${shown}); add it there, or set cluster.self to the address the other peers use for this replica`);
    }
    const candidates = this.localAddresses().map((address) => memberId(address, port));
    const matches = [...new Set(peers.filter((peer) => candidates.includes(peer)))];
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    if (matches.length > 1) {
      throw new ConfigError(`cluster: several peers (${matches.join(', ')}) are addresses of this host on port ${port}; set cluster.self to the one that is this replica`);
    }
    throw new ConfigError(
      `cluster: cluster.listen is ${listen} and none of this host's addresses on port ${port} is among cluster.peers (${shown}); set cluster.self to the address the other peers use for this replica (in Kubernetes: \${POD_IP}:${port})`,
    );
  }
}
