import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed and index. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly random: () => number) {}
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('empty choice');
    return item;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  hex(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += this.int(16).toString(16);
    return out;
  }
  ascii(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += String.fromCharCode(33 + this.int(94));
    return out;
  }
}

const METHODS = ['GET', 'GET', 'GET', 'GET', 'HEAD', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'SEARCH', 'LOCK'] as const;
const SEGMENTS = ['team', 'app', 'library', 'alpine', 'reg.example', 'ghcr.io', 'cg', 'A', '_', '-x', 'a..b', 'x--y', 'ünï', '😀', '%zz', '%2F', '%00', '%2e%2e', '..', '.', '', 'sha256:aa', 'manifests', 'blobs'];

function name(g: Gen, image: FakeImage): string {
  if (g.chance(0.25)) return image.repository;
  if (g.chance(0.1)) return `reg.example/${image.repository}`;
  if (g.chance(0.05)) return 'a/'.repeat(200 + g.int(1000)) + 'z';
  if (g.chance(0.05)) return 'x'.repeat(256 + g.int(4000));
  const parts: string[] = [];
  const count = 1 + g.int(4);
  for (let i = 0; i < count; i++) parts.push(g.chance(0.7) ? g.pick(SEGMENTS) : g.ascii(1 + g.int(12)).replace(/[?#]/g, ''));
  return parts.join(g.chance(0.1) ? '//' : '/');
}

function digest(g: Gen, image: FakeImage): string {
  const real = [...image.blobs.keys()];
  return g.pick([
    image.digest,
    g.pick(real),
    `sha256:${g.hex(64)}`,
    `sha256:${g.hex(g.int(70))}`,
    `sha512:${g.hex(128)}`,
    `sha256:${g.hex(64).toUpperCase()}`,
    `md5:${g.hex(32)}`,
    'sha256:',
    `sha256:${'g'.repeat(64)}`,
    g.ascii(10),
  ]);
}

function reference(g: Gen, image: FakeImage): string {
  return g.pick([image.tag, image.digest, 'latest', g.ascii(1 + g.int(20)).replace(/[/?#]/g, ''), 'x'.repeat(129), '-bad', digest(g, image), '%zz', 'ü']);
}

function query(g: Gen): string {
  if (g.chance(0.6)) return '';
  const params = [
    'ns=reg.example',
    'ns=evil.example',
    'ns=%zz',
    'ns=',
    `n=${g.pick(['1', '0', '-1', 'abc', '99999999', '10000', '1e3'])}`,
    `last=${g.ascii(5)}`,
    'artifactType=%zz',
    `${g.ascii(3)}=${g.ascii(3)}`,
    '&&&',
    'ns',
  ];
  const count = 1 + g.int(3);
  return `?${Array.from({ length: count }, () => g.pick(params).replace(/#/g, '')).join('&')}`;
}

/** A generated request path with its query. */
function target(g: Gen, image: FakeImage): string {
  const roll = g.int(10);
  let p: string;
  if (roll === 0) p = g.pick(['/', '/healthz', '/readyz', '/metrics', '/v2', '/v2/', '/v2/_catalog', '/v1/search', '/favicon.ico', '/v2/../etc/passwd', '/%zz', '/v2/%zz/manifests/latest']);
  else if (roll <= 4) p = `/v2/${name(g, image)}/manifests/${reference(g, image)}`;
  else if (roll <= 7) p = `/v2/${name(g, image)}/blobs/${g.chance(0.1) ? 'uploads/' : ''}${digest(g, image)}`;
  else if (roll === 8) p = `/v2/${name(g, image)}/tags/list`;
  else p = `/v2/${name(g, image)}/referrers/${digest(g, image)}`;
  if (g.chance(0.05)) p = p.replace(/\//g, '/./');
  if (g.chance(0.05)) p = p.toUpperCase();
  return p + query(g);
}

function headers(g: Gen, image: FakeImage): Record<string, string> {
  const out: Record<string, string> = {};
  if (g.chance(0.3)) out.range = g.pick(['bytes=0-9', 'bytes=zz', 'bytes=5-1', 'bytes=0-', 'bytes=-0', 'items=1-2', 'bytes=0-1,3-4', `bytes=${g.int(1e9)}-`, 'bytes=99999999999999999999-']);
  if (g.chance(0.3)) out.accept = g.pick([image.mediaType, '*/*', 'text/html', g.ascii(40), 'application/vnd.docker.distribution.manifest.v2+json;q=zz', ',,,,']);
  if (g.chance(0.2)) {
    out.authorization = g.pick(['Basic !!!', 'Bearer x', `Basic ${Buffer.from(`${g.ascii(5)}:${g.ascii(8)}`).toString('base64')}`, 'Basic ', 'Basic Og==', g.ascii(30), `Basic ${Buffer.from('ci:ci-pass').toString('base64')}`]);
  }
  if (g.chance(0.1)) out['if-none-match'] = g.pick([`"${image.digest}"`, '*', g.ascii(10)]);
  if (g.chance(0.05)) out[`x-${g.hex(6)}`] = g.ascii(g.int(200));
  return out;
}

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
  method: string;
  request: string;
}

/** Every answer ≥ 400 is OCI JSON (HEAD: no body, JSON content type); nothing is a 500. */
function problems(answers: Answer[]): string[] {
  const bad: string[] = [];
  for (const a of answers) {
    const where = `${a.method} ${a.request.slice(0, 120)} -> ${a.status}`;
    if (a.status === 500) {
      bad.push(`${where}: internal error ${a.body.slice(0, 200)}`);
      continue;
    }
    if (a.status < 400) continue;
    if (!a.contentType?.startsWith('application/json')) {
      bad.push(`${where}: content-type ${String(a.contentType)}`);
      continue;
    }
    if (a.method === 'HEAD') continue;
    try {
      const parsed = JSON.parse(a.body) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
      const first = parsed.errors?.[0];
      if (parsed.errors?.length !== 1 || typeof first?.code !== 'string' || typeof first.message !== 'string' || typeof first.detail !== 'object') {
        bad.push(`${where}: not OCI JSON ${a.body.slice(0, 200)}`);
      }
    } catch {
      bad.push(`${where}: body is not JSON ${a.body.slice(0, 200)}`);
    }
  }
  return bad;
}

/** Parses one raw HTTP/1.1 response (status, content-type, body by Content-Length); undefined when none came. */
function parseRaw(text: string): { status: number; contentType: string | undefined; body: string } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return text.length === 0 ? undefined : { status: -1, contentType: undefined, body: text };
  const head = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? -1);
  const field = (name: string): string | undefined =>
    head
      .find((line) => line.toLowerCase().startsWith(`${name}:`))
      ?.slice(name.length + 1)
      .trim();
  const length = Number(field('content-length') ?? 0);
  return { status, contentType: field('content-type'), body: Buffer.from(text.slice(end + 4), 'latin1').subarray(0, length).toString('utf8') };
}

/** Writes bytes on a fresh connection and collects what comes back until the server closes (or 2 s pass). */
function rawExchange(port: number, bytes: Buffer, endAfterWrite: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 2_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes, () => {
      if (endAfterWrite) socket.end();
    });
  });
}

/** Malformed or hostile HTTP: bad request lines, invalid methods, oversized headers, bad framing, binary noise. */
function malformed(g: Gen, image: FakeImage): { bytes: Buffer } {
  const path = target(g, image).replace(/ /g, '');
  const texts = [
    `${g.pick(['FOO', 'G ET', 'get', 'GET\t', '', 'BREW', 'M-SEARCH', 'ÜBER'])} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET ${path} HTTP/${g.pick(['2.0', '1.2', '9', 'x', '1.1 extra'])}\r\nHost: x\r\n\r\n`,
    `GET ${path}\r\n\r\n`,
    `GET ${g.pick(['http://x', 'https://x:1', '*', 'x', 'http://', 'ftp://x'])}${path} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000 + g.int(10_000))}\r\n\r\n`,
    `GET /v2/${'a'.repeat(17_000)}/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\n${g.ascii(20)}\r\n\r\n`,
    `POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    `POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    `CONNECT reg.example:443 HTTP/1.1\r\nHost: reg.example:443\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nExpect: ${g.pick(['200-ok', 'x', '100-continue-please'])}\r\n\r\n`,
    `GET ${path} HTTP/1.1\nHost: x\n\n`,
    `GET ${path} HTTP/1.1\r\n\r\n`,
    `GET ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n`,
  ];
  if (g.chance(0.1)) {
    const noise = Buffer.alloc(1 + g.int(200));
    for (let i = 0; i < noise.length; i++) noise[i] = g.int(256);
    return { bytes: noise };
  }
  if (g.chance(0.05)) return { bytes: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n`, 'latin1') }; // cut short
  return { bytes: Buffer.from(g.pick(texts), 'utf8') };
}

/** A well-formed request (random path, headers) as raw bytes, so odd bytes reach the hot path unencoded. */
function wellFormed(g: Gen, image: FakeImage): { method: string; request: string; bytes: Buffer } {
  const method = g.chance(0.8) ? g.pick(['GET', 'HEAD']) : g.pick(METHODS);
  const origin = g.chance(0.5) ? `/v2/${image.repository}/manifests/${g.pick([image.tag, image.digest])}${query(g)}` : target(g, image);
  // Absolute-form targets (RFC 9112 §3.2.2), as proxies and `curl --request-target` send them.
  const request = g.chance(0.1) ? `${g.pick(['http://127.0.0.1', 'https://mirror.example:5000', 'HTTP://x', 'http://u@x', 'http://'])}${origin}` : origin;
  const lines = [`${method} ${request.replace(/[ \r\n]/g, '')} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [field, value] of Object.entries(headers(g, image))) lines.push(`${field}: ${value.replace(/[\r\n]/g, '')}`);
  return { method, request, bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8') };
}

async function injectAll(pg: Harness, g: Gen, image: FakeImage, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  const BATCH = 16;
  for (let done = 0; done < count; done += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - done) }, () => {
      const method = g.pick(METHODS);
      const url = target(g, image);
      const h = headers(g, image);
      const withBody = method !== 'GET' && method !== 'HEAD' && g.chance(0.5);
      if (withBody) h['content-type'] = g.pick(['application/json', 'text/plain', 'application/octet-stream', 'x/y', g.ascii(10)]);
      const payload = !withBody ? undefined : g.chance(0.03) ? BIG_BODY : g.pick(['{', '{}', g.ascii(50)]);
      return { method, url, headers: h, payload };
    });
    const results = await Promise.all(
      batch.map(async (req) => {
        const res = await pg.app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, payload: req.payload });
        const contentType = res.headers['content-type'];
        return { status: res.statusCode, contentType: typeof contentType === 'string' ? contentType : undefined, body: res.body, method: req.method, request: req.url };
      }),
    );
    answers.push(...results);
  }
  return answers;
}

async function setup(extraYaml = ''): Promise<{ fake: FakeRegistry; pg: Harness; image: FakeImage }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const image = fake.add(makeImage('team/app', '1', 2, 1024));
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n  ghcr.io: { url: ${fake.origin}, auth: { type: anonymous } }\n${extraYaml}`, { clock });
  cleanups.push(() => pg.close());
  return { fake, pg, image };
}

const SEED = 20_260_101;
/** Connections open at once in the socket part. */
const SOCKETS = 10;
/** Over the 1 MiB body limit. */
const BIG_BODY = 'x'.repeat(1024 * 1024 + 1);

describe('fuzz: hostile and careless clients', () => {
  it('answers 10,000 generated requests through inject() and 1,500 over a real socket with OCI JSON errors and no 500', async () => {
    const { fake, pg, image } = await setup();
    const g = new Gen(prng(SEED));
    const injected = await injectAll(pg, g, image, 10_000);

    const base = await pg.listen();
    const port = Number(new URL(base).port);
    // Warm the cache so the manifest hot path answers the socket requests that name the image.
    expect((await pg.app.inject({ url: `/v2/${image.repository}/manifests/${image.tag}` })).statusCode).toBe(200);
    const upstreamBefore = fake.seen.length;
    const tagPath = `/v2/${image.repository}/manifests/${image.tag}`;
    const tagFetchesBefore = fake.seen.filter((s) => s.path === tagPath).length;
    const overSocket: Answer[] = [];
    let hotPathAnswers = 0;
    for (let i = 0; i < 1_000; i += SOCKETS) {
      const batch = Array.from({ length: SOCKETS }, () => wellFormed(g, image));
      const texts = await Promise.all(batch.map((req) => rawExchange(port, req.bytes, false)));
      batch.forEach((req, at) => {
        const parsed = parseRaw(texts[at] ?? '');
        if (parsed === undefined) throw new Error(`no answer to ${req.method} ${req.request}`);
        overSocket.push({ ...parsed, method: req.method, request: req.request });
        if (parsed.status === 200 && req.request.includes('/manifests/')) hotPathAnswers++;
      });
    }
    let unanswered = 0;
    for (let i = 0; i < 500; i += SOCKETS) {
      const batch = Array.from({ length: SOCKETS }, () => malformed(g, image));
      // The client half-closes after writing: Node still answers (its sockets allow half-open), and a
      // request that parsed is answered and the connection closed instead of kept alive.
      const texts = await Promise.all(batch.map((req) => rawExchange(port, req.bytes, true)));
      batch.forEach((req, at) => {
        const parsed = parseRaw(texts[at] ?? '');
        if (parsed === undefined) unanswered++;
        else overSocket.push({ ...parsed, method: 'RAW', request: req.bytes.subarray(0, 80).toString('latin1') });
      });
    }

    expect(problems(injected)).toEqual([]);
    expect(problems(overSocket)).toEqual([]);
    expect(injected.filter((a) => a.status >= 400).length).toBeGreaterThan(5_000);
    expect(injected.filter((a) => a.status < 400).length).toBeGreaterThan(200);
    expect(overSocket.filter((a) => a.method === 'RAW' && a.status >= 400).length).toBeGreaterThan(400);
    expect(hotPathAnswers).toBeGreaterThan(100);
    // The hot path answered those from the cache (the fake clock never passes tagTTL): few upstream requests for the tag.
    expect(fake.seen.filter((s) => s.path === tagPath).length - tagFetchesBefore).toBeLessThan(hotPathAnswers / 2);
    // Only well-formed pull requests for the configured upstream ever left pullgate.
    expect(fake.seen.every((s) => s.path.startsWith('/v2/') && (s.method === 'GET' || s.method === 'HEAD'))).toBe(true);
    expect(fake.seen.length - upstreamBefore).toBeLessThan(overSocket.length);
    // A cut-short request may get no answer when the client hung up first; everything else was answered.
    expect(unanswered).toBeLessThan(60);
  });

  it('keeps answering OCI JSON when clients must log in: garbage credentials, throttled addresses', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-fuzz-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'htpasswd');
    writeFileSync(file, `ci:${bcrypt.hashSync('ci-pass', 4)}\n`);
    const { pg, image } = await setup(`clients: { anonymous: false, htpasswd: ${JSON.stringify(file)} }\n`);
    const g = new Gen(prng(SEED + 1));
    const answers = await injectAll(pg, g, image, 1_500);
    expect(problems(answers)).toEqual([]);
    const statuses = new Set(answers.map((a) => a.status));
    expect(statuses.has(401)).toBe(true);
    expect(statuses.has(429)).toBe(true);
    expect(pg.logs.join('\n')).not.toContain('ci-pass');
  });
});
