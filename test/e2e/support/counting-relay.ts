import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the relay passed on. */
export interface RelayedRequest {
  method: string;
  path: string;
  /** Upstream's status, once it answered. */
  status?: number;
}

/** A blob body held mid-transfer: `reached` resolves once `afterBytes` went out, `release` lets the rest through. */
export interface Hold {
  reached: Promise<void>;
  release(): void;
}

interface HoldState {
  afterBytes: number;
  released: boolean;
  waiters: (() => void)[];
  markReached: () => void;
}

/**
 * A plain HTTP relay on 127.0.0.1 in front of an upstream registry: it records every request it passes on
 * (the count of upstream GETs a test asserts) and can hold one blob's body after some bytes until released,
 * so a test can act (kill a process) while a fill is certainly in the middle.
 */
export class CountingRelay {
  readonly seen: RelayedRequest[] = [];
  private readonly holds = new Map<string, HoldState>();
  private server: Server | undefined;
  private port = 0;

  private constructor(private readonly target: URL) {}

  /** Starts a relay to `targetUrl` (http://host:port). */
  static async start(targetUrl: string): Promise<CountingRelay> {
    const relay = new CountingRelay(new URL(targetUrl));
    const server = createServer((req, res) => relay.pass(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    relay.server = server;
    relay.port = (server.address() as AddressInfo).port;
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Upstream's statuses for the GETs of `/v2/…/blobs/<digest>` that went through the relay, in order. */
  blobGets(digest: string): (number | undefined)[] {
    return this.seen.filter((r) => r.method === 'GET' && r.path.split('?')[0]?.endsWith(`/blobs/${digest}`) === true).map((r) => r.status);
  }

  /** GETs of the blob that upstream answered with its body (200): the transfers, without auth challenges (401). */
  blobTransfers(digest: string): number {
    return this.blobGets(digest).filter((status) => status === 200).length;
  }

  /** Holds the body of the next GETs of `digest` after `afterBytes` bytes until `release()`. */
  hold(digest: string, afterBytes: number): Hold {
    let markReached = (): void => undefined;
    const reached = new Promise<void>((resolve) => (markReached = resolve));
    const state: HoldState = { afterBytes, released: false, waiters: [], markReached };
    this.holds.set(digest, state);
    return {
      reached,
      release: () => {
        state.released = true;
        this.holds.delete(digest);
        for (const wake of state.waiters.splice(0)) wake();
      },
    };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private holdFor(path: string): HoldState | undefined {
    const bare = path.split('?')[0] ?? '';
    for (const [digest, state] of this.holds) if (bare.endsWith(`/blobs/${digest}`)) return state;
    return undefined;
  }

  private pass(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const seen: RelayedRequest = { method, path };
    this.seen.push(seen);
    const hold = method === 'GET' ? this.holdFor(path) : undefined;
    const upstream = request(
      { host: this.target.hostname, port: this.target.port, method, path, headers: { ...req.headers, host: this.target.host } },
      (upRes) => {
        seen.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          sent += chunk.length;
          const more = res.write(chunk);
          const held = hold !== undefined && !hold.released && sent >= hold.afterBytes;
          if (!more || held) upRes.pause();
          if (held) {
            hold.markReached();
            hold.waiters.push(() => upRes.resume());
          } else if (!more) {
            res.once('drain', () => upRes.resume());
          }
        });
        upRes.once('end', () => res.end());
        upRes.once('error', () => res.destroy());
        res.once('close', () => {
          if (!res.writableFinished) upRes.destroy();
        });
      },
    );
    upstream.once('error', () => res.destroy());
    req.pipe(upstream);
  }
}
