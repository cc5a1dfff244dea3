import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/core/deps.js';

/** An unsigned JWT with these claims (pullgate reads claims, it does not verify signatures). */
export function makeJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.c2ln`;
}

/** Reads the claims of a JWT made by makeJwt (or any JWT). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** What an assumable identity accepts, as Chainguard's claim_match does. */
export interface FakeIdentity {
  issuer: string;
  /** Exact subject, e.g. `repo:org/app:ref:refs/heads/main`. */
  subject: string;
  /** Audience the OIDC token must carry. */
  audience: string;
}

/** One exchange the fake STS received. */
export interface SeenExchange {
  /** The OIDC token presented (a fake's, never a real secret). */
  oidc: string | undefined;
  query: URLSearchParams;
  body: unknown;
  subject: unknown;
  status: number;
}

/**
 * A fake Chainguard issuer (POST /sts/exchange, answering `{"token"}` or a gRPC-gateway error
 * `{"code","message"}`) and a fake GitHub Actions id-token endpoint (GET /actions/idtoken
 * answering `{"value"}`), on 127.0.0.1:0, with counts of what each received.
 */
export class FakeIssuer {
  private server: Server | undefined;
  origin = '';
  readonly identities = new Map<string, FakeIdentity>();
  readonly exchanges: SeenExchange[] = [];
  readonly actionsRequests: { audience: string | null; authorization: string | undefined }[] = [];
  /** Lifetime of issued registry tokens, seconds. */
  tokenLifetime = 3600;
  /** The GitHub Actions request token the fake accepts, and the subject of the tokens it issues. */
  actionsRequestToken = 'actions-request-token';
  actionsSubject = 'repo:acme/app:ref:refs/heads/main';
  /** Called with every registry token issued, so the fake registry can accept it. */
  onIssue: (token: string) => void = () => undefined;
  private issued = 0;

  constructor(private readonly clock: Clock) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => this.handle(req, res, body));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The env a GitHub Actions job with `permissions: id-token: write` has. */
  actionsEnv(): NodeJS.ProcessEnv {
    return {
      GITHUB_ACTIONS: 'true',
      ACTIONS_ID_TOKEN_REQUEST_URL: `${this.origin}/actions/idtoken?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: this.actionsRequestToken,
    };
  }

  /** An OIDC token as a CI system would issue it, expiring `ttl` seconds from now. */
  oidcToken(claims: { iss?: string; sub: string; aud: string }, ttl = 300): string {
    const now = Math.floor(this.clock.now() / 1000);
    return makeJwt({ iss: GITHUB_ACTIONS_ISSUER, ...claims, iat: now, exp: now + ttl });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', this.origin);
    if (req.method === 'GET' && url.pathname === '/actions/idtoken') {
      this.actionsRequests.push({ audience: url.searchParams.get('audience'), authorization: req.headers.authorization });
      if (req.headers.authorization !== `bearer ${this.actionsRequestToken}`) return this.json(res, 401, { message: 'bad request token' });
      return this.json(res, 200, { count: 1, value: this.oidcToken({ sub: this.actionsSubject, aud: url.searchParams.get('audience') ?? '' }) });
    }
    if (req.method === 'POST' && url.pathname === '/sts/exchange') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
      const answer = this.exchange(req, url, parsed);
      this.exchanges.push({ oidc: /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1], query: url.searchParams, body: parsed, subject: answer.subject, status: answer.status });
      return this.json(res, answer.status, answer.body);
    }
    return this.json(res, 404, { code: 5, message: 'Not Found' });
  }

  private exchange(req: IncomingMessage, url: URL, body: unknown): { status: number; body: unknown; subject: unknown } {
    const oidc = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!oidc) return { status: 401, body: { code: 16, message: 'missing bearer token' }, subject: undefined };
    const claims = claimsOf(oidc);
    const id = (body as { identity?: unknown } | undefined)?.identity ?? url.searchParams.get('identity');
    const identity = typeof id === 'string' ? this.identities.get(id) : undefined;
    if (typeof id !== 'string' || !identity) return { status: 404, body: { code: 5, message: 'Identity not found' }, subject: claims.sub };
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.clock.now()) {
      return { status: 401, body: { code: 16, message: 'oidc: token is expired' }, subject: claims.sub };
    }
    if (claims.iss !== identity.issuer || claims.sub !== identity.subject || claims.aud !== identity.audience) {
      return { status: 403, body: { code: 7, message: 'PermissionDenied: token does not match the identity' }, subject: claims.sub };
    }
    const now = Math.floor(this.clock.now() / 1000);
    const token = makeJwt({ iss: this.origin, sub: `identity:${id}`, aud: 'cgr.dev', iat: now, exp: now + this.tokenLifetime, n: ++this.issued });
    this.onIssue(token);
    return { status: 200, body: { token }, subject: claims.sub };
  }
}
