import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, buildServices } from '../../src/app/app.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import { TlsFiles } from '../../src/http/tls-files.js';
import { makeCa, makeLeaf, SecretMount, type CertFiles } from '../helpers/certs.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-tls-listener-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Started {
  url: string;
  app: FastifyInstance;
  logs: string[];
  fake: FakeRegistry;
}

/** pullgate over HTTPS on 127.0.0.1:0 with the given tls: block, and a fake upstream holding team/app:1. */
async function start(dir: string, tlsYaml: string, extra = '', reloadMs?: number): Promise<Started> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  fake.add(makeImage('team/app', '1'));
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => logs.push(line) });
  const dispatcher = new Agent();
  cleanups.push(() => dispatcher.close());
  const deps: Deps = { clock, dispatcher, logger, env: {} };
  const yaml = `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n${tlsYaml}\n${extra}`;
  const config = loadConfigText(yaml, {}, 'test', dir);
  const tls = config.tls === undefined ? undefined : new TlsFiles(config.tls, logger);
  await tls?.load();
  const app = buildApp(config, deps, buildServices(config, deps), { tls, ...(reloadMs === undefined ? {} : { tlsReloadMs: reloadMs }) });
  cleanups.push(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: address, app, logs, fake };
}

function client(ca: string, cert?: CertFiles): Agent {
  const agent = new Agent({ connect: { ca: readFileSync(ca), servername: 'localhost', ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) } });
  cleanups.push(() => agent.close());
  return agent;
}

/** The SHA-256 fingerprint of the certificate a new handshake gets. */
function handshakeFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe('HTTPS listener (tls:)', () => {
  it('serves the pull API and the probes over TLS, and refuses plain HTTP', async () => {
    const dir = tempDir();
    const ca = makeCa(path.join(dir, 'pki'));
    const leaf = makeLeaf(path.join(dir, 'pki'), 'server', ca);
    const { url, logs } = await start(dir, `tls: { cert: ${leaf.cert}, key: ${leaf.key} }`);
    // listen() and Fastify's own start-up line name the scheme the listener speaks.
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const listening = logs.filter((line) => line.includes('Server listening at'));
    expect(listening.length).toBeGreaterThan(0);
    expect(listening.every((line) => line.includes('Server listening at https://'))).toBe(true);
    const dispatcher = client(ca.cert);
    for (const pathname of ['/healthz', '/readyz', '/v2/', '/v2/team/app/manifests/1']) {
      const res = await request(`${url}${pathname}`, { dispatcher });
      await res.body.dump();
      expect(res.statusCode, pathname).toBe(200);
    }
    // An absolute-form target over TLS is answered as its path, like over plain HTTP (not 500).
    const rawTls = (text: string): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: Number(new URL(url).port), ca: readFileSync(ca.cert), servername: 'localhost' }, () => socket.write(text));
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('error', reject);
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      });
    expect(await rawTls('GET https://localhost/v2/team/app/manifests/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
    expect(await rawTls('GET * HTTP/1.1\r\nHost: localhost\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 [^]*"code":"UNSUPPORTED"/);
    await expect(request(url.replace('https:', 'http:') + '/healthz').then((r) => r.body.dump())).rejects.toThrow();
  });

  it('mutual TLS: only clients with a certificate from clientCA connect, and its CN is the subject clients.access sees', async () => {
    const dir = tempDir();
    const ca = makeCa(path.join(dir, 'pki'));
    const clientCa = makeCa(path.join(dir, 'pki'), 'clients');
    const leaf = makeLeaf(path.join(dir, 'pki'), 'server', ca);
    const ciBot = makeLeaf(path.join(dir, 'pki'), 'ci-bot', clientCa, 'ci-bot', 'client');
    const bob = makeLeaf(path.join(dir, 'pki'), 'bob', clientCa, 'bob', 'client');
    const { url, logs } = await start(
      dir,
      `tls: { cert: ${leaf.cert}, key: ${leaf.key}, clientCA: ${clientCa.cert} }`,
      'clients:\n  access:\n    - { subjects: [ci-bot], allow: ["reg.example/team/**"] }\n',
    );
    const allowed = await request(`${url}/v2/team/app/manifests/1`, { dispatcher: client(ca.cert, ciBot) });
    await allowed.body.dump();
    expect(allowed.statusCode).toBe(200);
    const denied = await request(`${url}/v2/team/app/manifests/1`, { dispatcher: client(ca.cert, bob) });
    expect(denied.statusCode).toBe(403);
    expect(await denied.body.text()).toContain('no rule of clients.access matched');
    await expect(request(`${url}/healthz`, { dispatcher: client(ca.cert) }).then((r) => r.body.dump())).rejects.toThrow();
    const users = logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e.msg === 'request').map((e) => e.user);
    expect(users).toEqual(['ci-bot', 'bob']);
  });

  it('picks up a rotated certificate (Kubernetes ..data swap) for new handshakes while a client keeps pulling', async () => {
    const dir = tempDir();
    const ca = makeCa(path.join(dir, 'pki'));
    const first = makeLeaf(path.join(dir, 'pki'), 'first', ca);
    const second = makeLeaf(path.join(dir, 'pki'), 'second', ca);
    const mount = new SecretMount(path.join(dir, 'secret'));
    mount.publish(first);
    const { url } = await start(dir, `tls: { cert: ${mount.cert}, key: ${mount.key} }`, '', 50);
    const port = Number(new URL(url).port);
    const dispatcher = client(ca.cert);
    const pull = async (): Promise<number> => {
      const res = await request(`${url}/v2/team/app/manifests/1`, { dispatcher });
      await res.body.dump();
      return res.statusCode;
    };
    expect(await pull()).toBe(200);
    expect(await handshakeFingerprint(port, ca.cert)).toBe(first.fingerprint);
    mount.publish(second);
    // The kept-alive client goes on pulling while pullgate notices the swap (re-read every 50 ms here).
    let seen = first.fingerprint;
    for (let i = 0; i < 200 && seen !== second.fingerprint; i++) {
      expect(await pull()).toBe(200);
      seen = await handshakeFingerprint(port, ca.cert);
    }
    expect(seen).toBe(second.fingerprint);
    expect(await pull()).toBe(200);
  });

  it('pullgate serve stops with exit 2 naming the file when the certificate cannot be read or does not match the key', () => {
    const dir = tempDir();
    const ca = makeCa(path.join(dir, 'pki'));
    const a = makeLeaf(path.join(dir, 'pki'), 'a', ca);
    const b = makeLeaf(path.join(dir, 'pki'), 'b', ca);
    const run = (tls: string): { status: number | null; stderr: string } => {
      const file = path.join(dir, 'pullgate.yaml');
      writeFileSync(file, `listen: 127.0.0.1:0\nregistries:\n  docker.io: {}\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n${tls}\n`);
      const result = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('src/cli.ts'), 'serve', '--config', file], {
        env: { PATH: process.env.PATH, HOME: dir },
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { status: result.status, stderr: result.stderr };
    };
    const missing = run(`tls: { cert: ${path.join(dir, 'nope.crt')}, key: ${a.key} }`);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`tls.cert: cannot read ${path.join(dir, 'nope.crt')}: ENOENT`);
    const mismatched = run(`tls: { cert: ${a.cert}, key: ${b.key} }`);
    expect(mismatched.status).toBe(2);
    expect(mismatched.stderr).toContain('do not form a usable certificate');
  });
});
