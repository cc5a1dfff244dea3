import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { Clock } from '../core/deps.js';
import { OwnerUnavailable, describeError } from '../core/errors.js';
import { PEER_HEADER, signPeerRequest } from './peer-auth.js';
import { PEER_FILL_PREFIX, peerBlobPath } from './peer-listener.js';
import type { OwnerBlob } from '../proxy/types.js';

export type { OwnerBlob };

/** A peer that does not accept the connection within this time is taken as down. */
export const PEER_CONNECT_TIMEOUT_MS = 2_000;

export interface PeerClientOptions {
  secret: string;
  clock: Clock;
  /** Longest wait for the owner's response headers (the owner first has its own upstream answer). */
  headersTimeoutMs: number;
  /** Longest pause between body chunks before the transfer is taken as cut. */
  bodyTimeoutMs: number;
  /** For tests; by default the client keeps its own Agents (one for TCP peers, one per unix socket). */
  dispatcher?: Dispatcher;
}


/**
 * Fetches blobs from the replica (or worker) that owns them, over the owner's internal listener,
 * signing every request with the cluster secret. Anything short of a 200 with a body — refused,
 * timed out, reset, an error status — is OwnerUnavailable, so the caller fetches from upstream itself.
 */
export class PeerClient {
  private readonly agents = new Map<string, Dispatcher>();

  constructor(private readonly options: PeerClientOptions) {}

  private dispatcherFor(member: string): Dispatcher {
    if (this.options.dispatcher !== undefined) return this.options.dispatcher;
    const key = member.startsWith('unix:') ? member : 'tcp';
    let agent = this.agents.get(key);
    if (agent === undefined) {
      const socketPath = member.startsWith('unix:') ? member.slice('unix:'.length) : undefined;
      agent = new Agent({
        connectTimeout: PEER_CONNECT_TIMEOUT_MS,
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
        keepAliveTimeout: 30_000,
        ...(socketPath !== undefined ? { socketPath } : {}),
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Streams (registry, repository, digest) from `member`; throws OwnerUnavailable when it does not answer with the blob. */
  async fetchBlob(member: string, registry: string, repository: string, digest: string): Promise<OwnerBlob> {
    const response = await this.get(member, peerBlobPath(registry, repository, digest), digest);
    const length = Number(response.headers['content-length']);
    return { body: response.body, size: Number.isFinite(length) && length >= 0 ? length : undefined };
  }

  /** The progress reports of `member`'s fill of the digest (fill-progress.ts), as a stream of lines; throws OwnerUnavailable. */
  async followFill(member: string, registry: string, repository: string, digest: string): Promise<Readable> {
    return (await this.get(member, peerBlobPath(registry, repository, digest, PEER_FILL_PREFIX), digest)).body;
  }

  /** A signed GET of `path` on `member`: the response when it is a 200, else OwnerUnavailable. */
  private async get(member: string, path: string, digest: string): Promise<Dispatcher.ResponseData> {
    const origin = member.startsWith('unix:') ? 'http://localhost' : `http://${member}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${origin}${path}`, {
        method: 'GET',
        headers: { [PEER_HEADER]: signPeerRequest(this.options.secret, 'GET', path, this.options.clock.now()) },
        dispatcher: this.dispatcherFor(member),
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
      });
    } catch (err) {
      throw new OwnerUnavailable(member, `cluster peer ${member} did not answer for ${digest}: ${describeError(err)}`);
    }
    if (response.statusCode !== 200) {
      const text = await response.body.text().catch(() => '');
      throw new OwnerUnavailable(member, `cluster peer ${member} answered ${response.statusCode} for ${digest}: ${text.slice(0, 300)}`, response.statusCode >= 500);
    }
    return response;
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.close()));
    this.agents.clear();
  }
}
