import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SigningKey, signJwt } from './signing-key.js';

export interface TokenUser {
  password: string;
  /** Actions this user may be granted on any repository. */
  actions: readonly ('pull' | 'push')[];
}

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** What the token server saw in one request, for assertions. */
export interface TokenRequestRecord {
  method: string;
  /** The user that presented credentials (Basic or OAuth2 password grant), null when anonymous. */
  user: string | null;
  authenticated: boolean;
  service: string | null;
  scopes: string[];
  granted: Access[];
  status: number;
}

/** A distribution-style token server (GET with Basic, or OAuth2 password-grant POST) that counts its requests. */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  requests: TokenRequestRecord[];
  close(): Promise<void>;
}

export const TOKEN_SERVICE = 'pullgate-e2e-registry';
export const TOKEN_ISSUER = 'pullgate-e2e-token-issuer';
const EXPIRES_IN = 300;

function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter((a) => a !== ''),
  };
}

function basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ') !== true) return undefined;
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Starts the token server on 127.0.0.1, port 0; grants each user only the actions it is allowed. */
export async function startTokenServer(signer: SigningKey, users: Record<string, TokenUser>): Promise<TokenServer> {
  const requests: TokenRequestRecord[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) {
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'only /token' }] });
      return;
    }
    const params = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    let creds = basicCredentials(req);
    if (req.method === 'POST' && params.get('grant_type') === 'password') {
      creds = { user: params.get('username') ?? '', password: params.get('password') ?? '' };
    }
    const record: TokenRequestRecord = {
      method: req.method,
      user: creds?.user ?? null,
      authenticated: false,
      service: params.get('service'),
      scopes,
      granted: [],
      status: 0,
    };
    requests.push(record);

    const known = creds === undefined ? undefined : users[creds.user];
    if (creds !== undefined && known?.password !== creds.password) {
      record.status = 401;
      sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
      return;
    }
    record.authenticated = known !== undefined;
    const allowed = new Set<string>(known?.actions ?? []);
    record.granted = scopes
      .map(parseScope)
      .filter((a): a is Access => a?.type === 'repository')
      .map((a) => ({ ...a, actions: a.actions.filter((x) => allowed.has(x)) }));

    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(signer, {
      iss: TOKEN_ISSUER,
      sub: creds?.user ?? '',
      aud: params.get('service') ?? TOKEN_SERVICE,
      exp: now + EXPIRES_IN,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: record.granted,
    });
    record.status = 200;
    const body: Record<string, unknown> = { token, access_token: token, expires_in: EXPIRES_IN, issued_at: new Date(now * 1000).toISOString() };
    sendJson(res, 200, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: TOKEN_SERVICE,
    issuer: TOKEN_ISSUER,
    certPath: signer.certPath,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => {
          if (err === undefined) resolve();
          else reject(err);
        });
      }),
  };
}
