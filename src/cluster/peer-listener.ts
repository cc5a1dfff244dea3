import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import type { FetchVerdict } from '../access/fetch-policy.js';
import { FetchRefused, NotFound, describeError } from '../core/errors.js';
import { errorBody, toOciError } from '../http/error-map.js';
import { ChunkSender, type SendBuffers } from '../http/send-chunks.js';
import type { BlobAnswer, OwnedFill } from '../proxy/types.js';
import { assertDigest, assertRepositoryName } from '../routing/reference.js';
import type { Route } from '../routing/route.js';
import { encodeProgress } from './fill-progress.js';
import { reportFill, type ProgressSink } from './fill-reporter.js';
import { PEER_HEADER, verifyPeerRequest } from './peer-auth.js';

/** Path prefix of a blob that a peer asks its owner for: `/cluster/v1/blobs/<registry>/<repository…>/<digest>`. */
export const PEER_BLOB_PREFIX = '/cluster/v1/blobs/';

/**
 * Path prefix of a fill's progress that a worker asks the owner on its host for (same form as a blob's):
 * the follower reads the owner's temp file itself, so the bytes cross one process.
 */
export const PEER_FILL_PREFIX = '/cluster/v1/fills/';

/** The path a peer requests for (registry, repository, digest); the registry key is URI-encoded. */
export function peerBlobPath(registry: string, repository: string, digest: string, prefix = PEER_BLOB_PREFIX): string {
  return `${prefix}${encodeURIComponent(registry)}/${repository}/${digest}`;
}

/** The owner's ordinary blob pipeline (cache, single flight, access checks), never forwarded to another peer. */
export type OwnerBlobs = (route: Route, digest: string, signal: AbortSignal) => Promise<BlobAnswer>;

/** The owner's single flight for a digest, started or joined without a reader (same checks as OwnerBlobs). */
export type OwnerFills = (route: Route, digest: string, signal: AbortSignal) => Promise<OwnedFill>;

export interface PeerListenerOptions {
  secret: string;
  clock: Clock;
  logger: Logger;
  /** True when `registry` is a configured registry key: nothing else is fetched for a peer either. */
  knownRegistry: (registry: string) => boolean;
  /**
   * `registries.<host>.repositories` for (registry, repository): a refused one answers 403 DENIED and
   * fetches nothing, as for a client — a peer request is no way around the mirror's fetch policy.
   */
  fetchVerdict: (route: Route) => FetchVerdict;
  blobs: OwnerBlobs;
  fills: OwnerFills;
  /** True when the digest is stored here (a fill that just ended is reported `cached`). */
  stored: (digest: string) => boolean;
  sendBuffers: SendBuffers;
}

/** Parses a peer blob path; throws a domain error for anything that is not one. */
function parseBlobPath(pathname: string, prefix: string, knownRegistry: (registry: string) => boolean): { route: Route; digest: string } {
  const parts = pathname.slice(prefix.length).split('/');
  const digest = parts.pop() ?? '';
  const encoded = parts.shift() ?? '';
  let registry: string;
  try {
    registry = decodeURIComponent(encoded);
  } catch {
    throw new NotFound('name', 'registry key is not URI-encoded');
  }
  if (!knownRegistry(registry)) throw new NotFound('name', `registry ${registry} is not configured on this replica`);
  const repository = parts.join('/');
  assertRepositoryName(repository);
  assertDigest(digest);
  return { route: { registry, repository }, digest };
}

/**
 * The internal listener that peers (other replicas, or other workers) ask for blobs this replica owns:
 * a plain node:http server apart from the client app, so it is never a mirror for clients. Every request
 * carries an HMAC of its method, path and time under `cluster.secret` (peer-auth.ts). The body is the
 * owner's single flight, streamed as it arrives; it carries Content-Length when upstream sent one, and
 * a fill that fails mid-body cuts the connection (no terminating chunk), so a follower never mistakes a
 * cut for a whole blob — and the follower verifies the digest itself before its last byte goes out.
 */
export class PeerListener {
  private readonly server: Server;

  constructor(private readonly options: PeerListenerOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.warn({ err: describeError(err) }, 'cluster peer request failed');
        res.destroy();
      });
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** Starts listening (a TCP host and port, or a unix socket path); resolves with the address bound. */
  async listen(where: { host: string; port: number } | { path: string }): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.removeListener('error', reject);
        resolve();
      };
      if ('path' in where) this.server.listen(where.path, done);
      else this.server.listen(where.port, where.host, done);
    });
    const address = this.server.address();
    if (address === null) throw new Error('cluster listener has no address');
    if (typeof address === 'string') return `unix:${address}`;
    const info: AddressInfo = address;
    return `${info.family === 'IPv6' ? `[${info.address}]` : info.address}:${info.port}`;
  }

  /** Stops listening; transfers in flight are cut (followers see the cut and fall back or fail before their last byte). */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private refuse(res: ServerResponse, err: unknown): void {
    const oci = toOciError(err);
    const body = errorBody(oci);
    res.writeHead(oci.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const pathname = query === -1 ? url : url.slice(0, query);
    const header = req.headers[PEER_HEADER];
    const failure = verifyPeerRequest(this.options.secret, req.method ?? '', pathname, typeof header === 'string' ? header : undefined, this.options.clock.now());
    if (failure !== undefined) {
      const status = failure === 'missing' ? 401 : 403;
      this.options.logger.warn({ peer: req.socket.remoteAddress, reason: failure }, 'cluster request refused: bad peer signature');
      const body = errorBody({ code: status === 401 ? 'UNAUTHORIZED' : 'DENIED', message: 'cluster peers only: sign requests with cluster.secret', detail: undefined });
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-length': 0 });
      res.end();
      return;
    }
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Error('peer disconnected'));
    });
    const fills = pathname.startsWith(PEER_FILL_PREFIX);
    this.options.logger.debug({ path: pathname, endpoint: fills ? 'fills' : 'blobs' }, 'cluster peer request');
    let answer: BlobAnswer | OwnedFill;
    try {
      if (!fills && !pathname.startsWith(PEER_BLOB_PREFIX)) throw new NotFound('blob', 'no such cluster endpoint');
      const { route, digest } = parseBlobPath(pathname, fills ? PEER_FILL_PREFIX : PEER_BLOB_PREFIX, this.options.knownRegistry);
      const refused = this.options.fetchVerdict(route);
      if (refused !== undefined) throw new FetchRefused(route.registry, route.repository, refused);
      answer = fills ? await this.options.fills(route, digest, controller.signal) : await this.options.blobs(route, digest, controller.signal);
    } catch (err) {
      this.refuse(res, err);
      return;
    }
    if ('kind' in answer) await this.report(res, answer, controller.signal);
    else await this.send(res, answer, pathname);
  }

  /** Answers a follower on this host with the fill's progress (fill-reporter.ts), not its bytes. */
  private async report(res: ServerResponse, owned: OwnedFill, signal: AbortSignal): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (owned.kind !== 'fill') {
      res.end(encodeProgress({ kind: owned.kind }));
      return;
    }
    const sink: ProgressSink = {
      write: (line) => res.write(line),
      end: (line) => res.end(line),
      isClosed: () => signal.aborted || res.destroyed,
    };
    await reportFill(owned.fill, sink, () => this.options.stored(owned.fill.digest));
  }

  private async send(res: ServerResponse, answer: BlobAnswer, pathname: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-pullgate-source': answer.source };
    if (Number.isFinite(answer.length)) headers['content-length'] = String(answer.length);
    const body = answer.body;
    if (body === undefined) {
      res.writeHead(200, headers);
      res.end();
      return;
    }
    if (body instanceof Readable) {
      res.writeHead(200, headers);
      try {
        await pipeline(body, res);
      } catch (err) {
        this.options.logger.warn({ path: pathname, err: describeError(err) }, 'cluster blob transfer cut short');
        res.destroy();
      }
      return;
    }
    const sender = new ChunkSender(body, this.options.sendBuffers);
    let first: Buffer | null;
    try {
      first = await sender.first();
    } catch (err) {
      body.close();
      this.refuse(res, err);
      return;
    }
    res.writeHead(200, headers);
    try {
      await sender.sendTo(res, first);
    } catch (err) {
      this.options.logger[res.destroyed ? 'debug' : 'warn']({ path: pathname, err: describeError(err) }, 'cluster blob transfer cut short');
      res.destroy();
    } finally {
      body.close();
    }
  }
}
