import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const QUIET_MS = 150;
const REQUEST = 'GET /v2/team/app/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => resolve(socket));
    socket.once('error', reject);
    cleanups.push(() => {
      socket.destroy();
    });
  });
}

/** The responses (by Content-Length) read on one connection; each is complete. */
function responses(text: string): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) throw new Error(`incomplete response head: ${JSON.stringify(rest.slice(0, 80))}`);
    const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0);
    if (rest.length < end + 4 + length) throw new Error(`truncated body: ${JSON.stringify(rest.slice(0, 80))}`);
    out.push(rest.slice(0, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

/** What the connection received after `from`, until it closed, and the error it closed with (ECONNRESET on a reset). */
function untilClosed(socket: Socket): Promise<{ text: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), error }));
  });
}

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

describe('shutting down with keep-alive connections open', () => {
  it('answers every request sent on an open connection as the close begins (200, or 503 with Connection: close) and resets none', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    fake.add(makeImage('team/app', '1'));
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock, app: { drainQuietMs: QUIET_MS } });
    let closed = false;
    cleanups.push(() => (closed ? undefined : pg.close()));
    const port = Number(new URL(await pg.listen()).port);

    // Pooled connections, each used once (the manifest is cached after the first): all idle now.
    const sockets: Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const socket = await open(port);
      socket.write(REQUEST);
      expect(await oneResponse(socket)).toMatch(/^HTTP\/1\.1 200 /);
      sockets.push(socket);
    }
    const outcomes = sockets.map((socket) => untilClosed(socket));
    // A third send their next request just before the close begins (still in flight to the server, unparsed), a third
    // just after, a third stay silent.
    for (const socket of sockets.slice(0, 4)) socket.write(REQUEST);
    const closing = pg.close().then(() => (closed = true));
    await new Promise((resolve) => setImmediate(resolve));
    for (const socket of sockets.slice(4, 8)) socket.write(REQUEST);
    await closing;

    const results = await Promise.all(outcomes);
    const statuses: string[] = [];
    for (const [i, { text, error }] of results.entries()) {
      expect(error, `connection ${i}`).toBeUndefined();
      const answered = responses(text);
      if (i < 8) expect(answered, `connection ${i}: its request was answered`).toHaveLength(1);
      else expect(answered, `connection ${i}: silent, closed without a word`).toHaveLength(0);
      for (const response of answered) {
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? 'none';
        statuses.push(status);
        if (status === '503') {
          expect(response).toMatch(/\r\nconnection: close\r\n/i);
          expect(response).toContain('"code":"UNAVAILABLE"');
        } else {
          expect(status).toBe('200');
        }
      }
    }
    expect(statuses).toHaveLength(8);
    // Those sent after the close began were refused politely.
    expect(statuses.filter((status) => status === '503').length).toBeGreaterThanOrEqual(4);
  });

  it('lets a response under way finish and tells its client the connection closes', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    fake.add(makeImage('team/app', '1'));
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock, app: { drainQuietMs: QUIET_MS } });
    let closed = false;
    cleanups.push(() => (closed ? undefined : pg.close()));
    const port = Number(new URL(await pg.listen()).port);
    const socket = await open(port);
    const outcome = untilClosed(socket);
    // A cold tag whose upstream answer is held: the response is under way (nothing sent yet) when the close begins.
    let release = (): void => undefined;
    fake.faults.holdManifests = new Promise<void>((resolve) => (release = resolve));
    socket.write(REQUEST);
    await new Promise<void>((resolve) => {
      const wait = (): void => {
        if (fake.seen.length > 0) resolve();
        else setTimeout(wait, 1);
      };
      wait();
    });
    const closing = pg.close().then(() => (closed = true));
    // The close has begun (the listener stops accepting at once); now the upstream answers.
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await closing;
    const { text, error } = await outcome;
    expect(error).toBeUndefined();
    const [response] = responses(text);
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
  });
});
