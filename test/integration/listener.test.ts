import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/deps.js';
import { createListener } from '../../src/http/listener.js';
import { FakeRegistry, makeImage, sha256 } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Short limits so the timeouts are observed in well under a second of real time (nothing sleeps). */
const LIMITS = 'clients: { connections: { max: 3, headersTimeout: 300ms, keepAlive: 300ms, idle: 500ms } }\n';

async function setup(extra = LIMITS): Promise<{ fake: FakeRegistry; pg: Harness; port: number }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n${extra}`, { clock });
  cleanups.push(() => pg.close());
  const port = Number(new URL(await pg.listen()).port);
  return { fake, pg, port };
}

/** A connection to 127.0.0.1 from `localAddress` (127.0.0.2 is loopback too on Linux: another client address). */
function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
    cleanups.push(() => {
      socket.destroy();
    });
  });
}

/** Everything the server sends until it closes the connection, and how long that took. */
function untilClosed(socket: Socket): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started }));
  });
}

/** Reads one response (by Content-Length) on a keep-alive connection. */
function oneResponse(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (end !== -1 && text.length >= end + 4 + length) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

async function exchange(port: number, request: string): Promise<string> {
  const socket = await open(port);
  const closed = untilClosed(socket);
  socket.end(request);
  return (await closed).text;
}

function ociError(text: string): { status: number; code: string | undefined; contentType: string | undefined } {
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end);
  const body = JSON.parse(text.slice(end + 4)) as { errors: { code: string; message: string; detail: unknown }[] };
  expect(body.errors[0]?.message).toEqual(expect.any(String));
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    code: body.errors[0]?.code,
    contentType: /content-type: ([^\r\n]+)/i.exec(head)?.[1],
  };
}

describe('the listener: Node-level errors, timeouts and the connection limit', () => {
  it("answers requests Node or Fastify would refuse with their own bodies as OCI JSON and closes", async () => {
    const { port, fake } = await setup('');
    const json = 'application/json; charset=utf-8';
    expect(ociError(await exchange(port, 'GET /v2/%zz/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 400, code: 'NAME_INVALID', contentType: json });
    expect(ociError(await exchange(port, 'FOO /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 400, code: 'UNSUPPORTED', contentType: json });
    expect(ociError(await exchange(port, 'garbage\r\n\r\n'))).toEqual({ status: 400, code: 'UNSUPPORTED', contentType: json });
    expect(ociError(await exchange(port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`))).toEqual({ status: 431, code: 'SIZE_INVALID', contentType: json });
    expect(ociError(await exchange(port, 'CONNECT reg.example:443 HTTP/1.1\r\nHost: reg.example:443\r\n\r\n'))).toEqual({ status: 405, code: 'UNSUPPORTED', contentType: json });
    expect(ociError(await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n'))).toEqual({ status: 417, code: 'UNSUPPORTED', contentType: json });
    expect(ociError(await exchange(port, 'PATCH /v2/a/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 405, code: 'UNSUPPORTED', contentType: json });
    expect(ociError(await exchange(port, 'GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 404, code: 'NOT_FOUND', contentType: json });
    // Without a Host header the request is answered as any other, not with Node's empty 400.
    expect(await exchange(port, 'GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    expect(fake.seen).toHaveLength(0);
  });

  it('answers an absolute-form request target as its path (RFC 9112), and any other non-path target 400 OCI JSON, never a 500', async () => {
    const { port, fake, pg } = await setup('');
    const image = fake.add(makeImage('team/app', '1'));
    const json = 'application/json; charset=utf-8';
    const ok = (text: string): string => {
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      return text.slice(text.indexOf('\r\n\r\n') + 4);
    };
    expect(ok(await exchange(port, 'GET http://x/v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toBe('{}');
    expect(ok(await exchange(port, 'GET HTTPS://127.0.0.1:1/v2/ HTTP/1.1\r\nConnection: close\r\n\r\n'))).toBe('{}');
    // Through the ordinary path (a cold tag), then the hot path (now cached): the same manifest both times.
    // (On a connection left open: a client that half-closes counts as gone once pullgate must wait for upstream.)
    const socket = await open(port);
    for (let i = 0; i < 2; i++) {
      socket.write('GET http://mirror.example:5000/v2/team/app/manifests/1?ns=reg.example HTTP/1.1\r\nHost: other\r\n\r\n');
      const text = await oneResponse(socket);
      expect(text).toContain(`docker-content-digest: ${image.digest}`);
      expect(ok(text)).toBe(image.manifest.toString());
    }
    expect(ociError(await exchange(port, 'GET http://x/v2/%zz/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 400, code: 'NAME_INVALID', contentType: json });
    expect(ociError(await exchange(port, 'GET http://x/nowhere HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ status: 404, code: 'NOT_FOUND', contentType: json });
    // An authority with no path is `/`: the status page (HTML), reached like any other path.
    expect(await exchange(port, 'GET http://x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 [\s\S]*content-type: text\/html/i);
    for (const target of ['*', 'v2/', 'http://user:pw@x/v2/', 'http:///v2/', 'ftp://x/v2/', 'x']) {
      expect(ociError(await exchange(port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)), target).toMatchObject({ status: 400, contentType: json });
    }
    // Fastify's inject() does not pass the listener: the router and the preflight still agree there.
    const injected = await pg.app.inject({ url: 'http://x/v2/team/app/manifests/1' });
    expect(injected.statusCode).not.toBe(500);
    expect(pg.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
    expect(pg.logs.join('\n')).not.toContain('preflight did not run');
  });

  it('closes a connection that sends nothing, or only part of its headers, after headersTimeout with a 408', async () => {
    const { port } = await setup('clients: { connections: { headersTimeout: 300ms, idle: 30s } }\n');
    const silent = await open(port);
    const partial = await open(port);
    partial.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    const [a, b] = await Promise.all([untilClosed(silent), untilClosed(partial)]);
    for (const closed of [a, b]) {
      // headersTimeout 300 ms, checked every 300 ms: closed well within 2 s (Node's default would be 60 s or never).
      expect(closed.ms).toBeLessThan(2_000);
      expect(ociError(closed.text)).toMatchObject({ status: 408, code: 'UNAVAILABLE' });
    }
  });

  it('closes an idle keep-alive connection after keepAlive', async () => {
    const { port } = await setup();
    const socket = await open(port);
    const closed = untilClosed(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, ms } = await closed;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(ms).toBeLessThan(2_000);
  });

  it('refuses connections beyond clients.connections.max and accepts again when one closes', async () => {
    const { port, pg } = await setup('clients: { connections: { max: 3 } }\n');
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = await open(port);
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await oneResponse(socket)).toMatch(/^HTTP\/1\.1 200 /);
      held.push(socket);
    }
    const refused = await open(port);
    const outcome = untilClosed(refused);
    refused.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await outcome).text).toBe('');
    expect(pg.logs.some((line) => line.includes('clients.connections.max'))).toBe(true);

    const one = held.pop();
    one?.destroy();
    // Wait until the server has seen that close, then a new connection is served.
    while ((await new Promise<number>((resolve) => pg.app.server.getConnections((_err, count) => resolve(count)))) >= 3) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('refuses one address its connections beyond clients.connections.perAddress while another address is still served', async () => {
    const { port, pg } = await setup('clients: { connections: { max: 50, perAddress: 3, headersTimeout: 30s } }\n');
    // One host holds its share with half-sent request heads (the 2,000 idle connections, scaled down).
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = await open(port, '127.0.0.1');
      socket.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
      held.push(socket);
    }
    for (let i = 0; i < 4; i++) {
      const refused = await open(port, '127.0.0.1');
      const outcome = untilClosed(refused);
      refused.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect((await outcome).text).toBe('');
    }
    // Another address is not affected.
    const other = await open(port, '127.0.0.2');
    other.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await oneResponse(other)).toMatch(/^HTTP\/1\.1 200 /);
    // Logged once for the address however many were refused, and counted each time.
    const warnings = pg.logs.filter((line) => line.includes('clients.connections.perAddress'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"address":"127.0.0.1"');
    expect(await pg.app.pullgate.metrics.registry.getSingleMetricAsString('pullgate_connections_refused_total')).toContain('pullgate_connections_refused_total{limit="address"} 4');
    // A held connection that finishes its request and closes frees a slot for its address.
    const first = held[0];
    if (first === undefined) throw new Error('no connection');
    const closed = untilClosed(first);
    first.end('Connection: close\r\n\r\n');
    expect((await closed).text).toMatch(/^HTTP\/1\.1 200 /);
    let answer = '';
    // The server sees that close a moment after the client: retry until it has.
    for (let attempt = 0; attempt < 50 && !answer.startsWith('HTTP/1.1 200'); attempt++) {
      answer = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('never cuts a blob download that keeps moving, but cuts one the client stopped reading after idle', async () => {
    const { fake, pg, port } = await setup();
    const size = 32 * 1024 * 1024;
    const image = fake.add(makeImage('team/big', '1', 1, size));
    const layer = [...image.blobs].find(([, bytes]) => bytes.length === size);
    if (!layer) throw new Error('no layer');
    const [digest, bytes] = layer;
    expect((await pg.app.inject({ url: `/v2/team/big/blobs/${digest}` })).statusCode).toBe(200); // now cached
    const request = `GET /v2/team/big/blobs/${digest} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

    // A slow reader: pauses 150 ms after every 2 MiB, so the download takes several times `idle` (500 ms).
    const slow = await open(port);
    const received: Buffer[] = [];
    let sincePause = 0;
    const done = new Promise<number>((resolve) => {
      const started = performance.now();
      slow.on('data', (chunk: Buffer) => {
        received.push(chunk);
        sincePause += chunk.length;
        if (sincePause >= 2 * 1024 * 1024) {
          sincePause = 0;
          slow.pause();
          setTimeout(() => slow.resume(), 150);
        }
      });
      slow.on('close', () => resolve(performance.now() - started));
    });
    slow.write(request);
    const elapsed = await done;
    const whole = Buffer.concat(received);
    const body = whole.subarray(whole.indexOf('\r\n\r\n') + 4);
    expect(body.length).toBe(bytes.length);
    expect(sha256(body)).toBe(digest);
    expect(elapsed).toBeGreaterThan(1_000);

    // A client that stops reading: pullgate's writes stall, and after `idle` without progress the connection is cut.
    const stalled = await open(port);
    let got = 0;
    const ended = new Promise<void>((resolve) => {
      stalled.on('close', () => resolve());
      stalled.on('error', () => undefined);
    });
    stalled.once('data', (chunk: Buffer) => {
      got += chunk.length;
      stalled.pause();
      setTimeout(() => {
        stalled.on('data', (more: Buffer) => (got += more.length));
        stalled.resume();
      }, 2_000);
    });
    stalled.write(request);
    await ended;
    expect(got).toBeLessThan(size);
  });

  it('answers 503 OCI JSON with Connection: close once the app is closing, before the hot path or Fastify see the request', async () => {
    let reached = 0;
    const server = createListener(() => reached++, {
      connections: { max: 10, perAddress: 10, headersTimeoutMs: 5_000, keepAliveMs: 5_000, idleMs: 5_000 },
      logger: createLogger('silent'),
      clock: new FakeClock(),
      fast: () => {
        reached++;
        return false;
      },
      open: () => false,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const text = await exchange(port, 'GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(ociError(text)).toEqual({ status: 503, code: 'UNAVAILABLE', contentType: 'application/json; charset=utf-8' });
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    expect(reached).toBe(0);
  });
});
