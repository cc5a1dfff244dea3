import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/core/deps.js';

/** One request the fake received, for count assertions. */
export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
}

export interface FakeImage {
  repository: string;
  tag: string;
  manifest: Buffer;
  digest: string;
  mediaType: string;
  blobs: Map<string, Buffer>;
}

export type AuthMode =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | {
      kind: 'bearer';
      /** Users allowed at the token endpoint; anonymous tokens are issued when `anonymous` is true. */
      users: Record<string, string>;
      anonymous: boolean;
      /** expires_in in the token answer; undefined omits it (ghcr). */
      expiresIn: number | undefined;
      /** cgr.dev: a token of another scope gets 403 instead of 401. */
      crossScope403: boolean;
      /** cgr.dev: anonymous tokens see only these tags. */
      anonymousTags?: string[];
      /** Where the realm lives; default this server's /token. */
      realmOrigin?: string;
      /** Resource 401s carry no WWW-Authenticate (gcr.io); only the /v2/ ping does. */
      bareResource401?: boolean;
    };

export interface Faults {
  /** Answer these statuses (in order, one per request) to manifest requests. */
  manifestStatuses?: number[];
  /** Answer these statuses to blob requests. */
  blobStatuses?: number[];
  /** Cut blob bodies after this many bytes. */
  cutBlobAt?: number;
  /** Serve these bytes instead of the real blob for its digest. */
  corruptBlob?: boolean;
  /** Redirect blob GETs to this origin (a FakeCdn) instead of serving them. */
  redirectBlobsTo?: string;
  /** Send only the first 64 KiB of blob bodies until released, to test coalescing and crashes. */
  holdBlobs?: Promise<void>;
  /** Answer manifest requests only once this settles (nothing is sent before), to hold a response under way. */
  holdManifests?: Promise<void>;
  /** Retry-After value sent with 429. */
  retryAfter?: string;
  /** Answer manifest requests with these OCI errors (in order, one per request), e.g. ECR's expired-token 403. */
  manifestErrors?: { status: number; code: string; message: string }[];
  /** Extra headers on every manifest answer (Docker Hub's `ratelimit-*`). */
  manifestHeaders?: Record<string, string>;
}

/** Extra endpoints on the fake (ACR's /oauth2/exchange …): path → handler receiving the request body. */
export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface IssuedFakeToken {
  scopes: string[];
  user: string | undefined;
  expiresAt: number;
}

/** Digest of bytes as the registry computes it. */
export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Builds a small OCI image: a config blob, `layers` random layer blobs of `layerSize` bytes, and its manifest. */
export function makeImage(repository: string, tag: string, layers = 1, layerSize = 64 * 1024): FakeImage {
  const blobs = new Map<string, Buffer>();
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  blobs.set(sha256(config), config);
  const layerDescriptors = [];
  for (let i = 0; i < layers; i++) {
    const layer = randomBytes(layerSize);
    blobs.set(sha256(layer), layer);
    layerDescriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length });
  }
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layerDescriptors,
    }),
  );
  return { repository, tag, manifest, digest: sha256(manifest), mediaType, blobs };
}

function scopeAllows(scopes: string[], repository: string): boolean {
  return scopes.some((scope) => {
    const last = scope.lastIndexOf(':');
    const first = scope.indexOf(':');
    return scope.slice(0, first) === 'repository' && scope.slice(first + 1, last) === repository && scope.slice(last + 1).split(',').includes('pull');
  });
}

/**
 * An in-process distribution registry on 127.0.0.1:0 that challenges with Basic or Bearer, issues
 * short-lived tokens, rejects cross-scope tokens (cgr.dev), redirects blobs, injects faults, and
 * records every request it receives.
 */
export class FakeRegistry {
  readonly seen: Seen[] = [];
  readonly images: FakeImage[] = [];
  faults: Faults = {};
  readonly routes = new Map<string, ExtraRoute>();
  private readonly tokens = new Map<string, IssuedFakeToken>();
  private server: Server | undefined;
  origin = '';

  constructor(
    public auth: AuthMode,
    private readonly clock: Clock,
  ) {}

  add(image: FakeImage): FakeImage {
    this.images.push(image);
    return image;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${address.port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Requests whose path matches, e.g. count('/token'). */
  count(pathPrefix: string, method?: string): number {
    return this.seen.filter((s) => s.path.startsWith(pathPrefix) && (method === undefined || s.method === method)).length;
  }

  /** Forgets every issued token, as a registry does when it rotates its signing key. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  tokenRequests(): Seen[] {
    return this.seen.filter((s) => s.path === '/token');
  }

  private realm(): string {
    return `${this.auth.kind === 'bearer' && this.auth.realmOrigin ? this.auth.realmOrigin : this.origin}/token`;
  }

  private challenge(repository: string | undefined, error?: string): string {
    if (this.auth.kind === 'basic') return `Basic realm="${this.origin}/"`;
    const scope = repository === undefined ? '' : `,scope="repository:${repository}:pull"`;
    return `Bearer realm="${this.realm()}",service="fake-registry"${scope}${error ? `,error="${error}"` : ''}`;
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    this.json(res, status, { errors: [{ code, message }] }, headers);
  }

  /** Issues a token (the /token endpoint); also used by a FakeAuthServer on another origin. */
  issueToken(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    if (this.auth.kind !== 'bearer') return this.error(res, 404, 'NOT_FOUND', 'no token endpoint');
    const header = req.headers.authorization;
    let user: string | undefined;
    if (header?.startsWith('Basic ')) {
      const [name = '', ...rest] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
      if (this.auth.users[name] !== rest.join(':')) return this.error(res, 401, 'UNAUTHORIZED', 'bad credentials');
      user = name;
    } else if (!this.auth.anonymous) {
      return this.error(res, 401, 'UNAUTHORIZED', 'authentication required');
    }
    const token = randomBytes(12).toString('hex');
    const lifetime = (this.auth.expiresIn ?? 60) * 1000;
    this.tokens.set(token, { scopes: query.getAll('scope'), user, expiresAt: this.clock.now() + lifetime });
    this.json(res, 200, { token, ...(this.auth.expiresIn === undefined ? {} : { expires_in: this.auth.expiresIn }) });
  }

  private authorized(req: IncomingMessage, res: ServerResponse, repository: string, tag: string | undefined): boolean {
    const header = req.headers.authorization;
    if (this.auth.kind === 'none') return true;
    if (this.auth.kind === 'basic') {
      const expected = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
      if (header === expected) return true;
      this.error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': this.challenge(undefined) });
      return false;
    }
    const bare = this.auth.bareResource401 === true;
    const unauthorized = (error?: string): false => {
      this.error(res, 401, 'UNAUTHORIZED', 'authentication required', bare ? {} : { 'www-authenticate': this.challenge(repository, error) });
      return false;
    };
    if (!header?.startsWith('Bearer ')) return unauthorized();
    const issued = this.tokens.get(header.slice(7));
    if (!issued || issued.expiresAt <= this.clock.now()) return unauthorized('invalid_token');
    if (!scopeAllows(issued.scopes, repository)) {
      if (this.auth.crossScope403) {
        this.error(res, 403, 'DENIED', 'token is for another scope');
        return false;
      }
      return unauthorized('insufficient_scope');
    }
    if (issued.user === undefined && this.auth.anonymousTags && tag !== undefined && !this.auth.anonymousTags.includes(tag) && !tag.startsWith('sha256:')) {
      this.error(res, 403, 'DENIED', 'anonymous access is limited to some tags');
      return false;
    }
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    this.seen.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization });
    const extra = this.routes.get(url.pathname);
    if (extra) {
      let body = '';
      for await (const chunk of req) body += (chunk as Buffer).toString('utf8');
      return extra(req, res, body);
    }
    if (url.pathname === '/token') return this.issueToken(req, res, url.searchParams);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (this.auth.kind === 'none') return this.json(res, 200, {});
      return this.error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': this.challenge(undefined) });
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname) ?? /^\/v2\/(.+)\/(tags)\/list$/.exec(url.pathname);
    const [, repository = '', kind = '', reference = ''] = match ?? [];
    if (!match) return this.error(res, 404, 'NOT_FOUND', 'no route');
    if (!this.authorized(req, res, repository, kind === 'manifests' ? reference : undefined)) return;
    if (kind === 'tags') {
      const tags = this.images.filter((i) => i.repository === repository).map((i) => i.tag).sort();
      if (tags.length === 0) return this.error(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
      const n = Number(url.searchParams.get('n') ?? tags.length);
      const last = url.searchParams.get('last');
      const rest = last === null ? tags : tags.filter((t) => t > last);
      const page = rest.slice(0, n);
      const headers: Record<string, string> = rest.length > n ? { link: `</v2/${repository}/tags/list?n=${n}&last=${page[page.length - 1] ?? ''}>; rel="next"` } : {};
      return this.json(res, 200, { name: repository, tags: page }, headers);
    }
    if (kind === 'manifests') return this.manifest(req, res, repository, reference);
    return this.blob(req, res, repository, reference);
  }

  private fault(statuses: number[] | undefined, res: ServerResponse): boolean {
    const status = statuses?.shift();
    if (status === undefined) return false;
    if (status === 429) this.error(res, 429, 'TOOMANYREQUESTS', 'slow down', this.faults.retryAfter ? { 'retry-after': this.faults.retryAfter } : {});
    else this.error(res, status, 'UNKNOWN', 'injected fault');
    return true;
  }

  private manifest(req: IncomingMessage, res: ServerResponse, repository: string, reference: string): void {
    if (this.fault(this.faults.manifestStatuses, res)) return;
    const injected = this.faults.manifestErrors?.shift();
    if (injected) return this.error(res, injected.status, injected.code, injected.message);
    const image = this.images.find((i) => i.repository === repository && (i.tag === reference || i.digest === reference));
    if (!image) return this.error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    const hold = this.faults.holdManifests;
    if (hold !== undefined) {
      void hold.then(() => this.sendManifest(req, res, image));
      return;
    }
    this.sendManifest(req, res, image);
  }

  private sendManifest(req: IncomingMessage, res: ServerResponse, image: FakeImage): void {
    res.writeHead(200, { ...this.faults.manifestHeaders, 'content-type': image.mediaType, 'content-length': image.manifest.length, 'docker-content-digest': image.digest });
    res.end(req.method === 'HEAD' ? undefined : image.manifest);
  }

  private blob(req: IncomingMessage, res: ServerResponse, repository: string, digest: string): void {
    if (this.fault(this.faults.blobStatuses, res)) return;
    const bytes = this.images.find((i) => i.repository === repository && i.blobs.has(digest))?.blobs.get(digest);
    if (!bytes) return this.error(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
    if (this.faults.redirectBlobsTo) {
      res.writeHead(307, { location: `${this.faults.redirectBlobsTo}/cdn/${digest}?signature=abc` });
      res.end();
      return;
    }
    serveBytes(req, res, this.faults.corruptBlob ? Buffer.from(bytes).fill(7, 0, 16) : bytes, this.faults.cutBlobAt, this.faults.holdBlobs);
  }
}

/** Writes bytes with Range support; `cutAt` destroys the socket after that many bytes. */
export function serveBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, cutAt?: number, hold?: Promise<void>): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let body = bytes;
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Number(range[2]) : bytes.length - 1;
    body = bytes.subarray(start, end + 1);
    res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-type': 'application/octet-stream' });
  } else {
    res.writeHead(200, { 'content-length': bytes.length, 'content-type': 'application/octet-stream' });
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (hold !== undefined) {
    // The first 64 KiB go out at once, the rest when the test releases the hold.
    const head = Math.min(64 * 1024, body.length);
    res.write(body.subarray(0, head));
    void hold.then(() => serveBody(res, body.subarray(head), cutAt));
    return;
  }
  serveBody(res, body, cutAt);
}

function serveBody(res: ServerResponse, body: Buffer, cutAt: number | undefined): void {
  if (cutAt !== undefined) {
    res.write(body.subarray(0, cutAt), () => res.destroy());
    return;
  }
  res.end(body);
}

/** A CDN / S3 stand-in: serves blobs by digest and answers 400 when Authorization is present, as S3 does. */
export class FakeCdn {
  readonly seen: Seen[] = [];
  private server: Server | undefined;
  origin = '';

  constructor(private readonly blobs: () => Map<string, Buffer>) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://cdn.invalid');
      this.seen.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization });
      if (req.headers.authorization !== undefined) {
        res.writeHead(400, { 'content-type': 'application/xml' });
        res.end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
        return;
      }
      const bytes = this.blobs().get(url.pathname.replace('/cdn/', ''));
      if (!bytes) {
        res.writeHead(404);
        res.end();
        return;
      }
      serveBytes(req, res, bytes);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
