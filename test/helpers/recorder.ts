import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Seen } from './fake-registry.js';

/** What an attacker would want pullgate to fetch: cloud-metadata-like text. */
export const METADATA_BODY = 'ami-id\ninstance-id\niam/security-credentials/admin\n';

/**
 * An internal service a hostile upstream points pullgate at (by default on 127.0.0.2, another
 * loopback address than the fake registry's): it records every hit and, unless given a handler,
 * answers with cloud-metadata-like text.
 */
export class Recorder {
  readonly seen: Seen[] = [];
  private server: Server | undefined;
  origin = '';

  constructor(
    private readonly host = '127.0.0.2',
    public handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(METADATA_BODY) });
      res.end(METADATA_BODY);
    },
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://recorder.invalid');
      this.seen.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization });
      this.handler(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, this.host, resolve));
    this.origin = `http://${this.host}:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
