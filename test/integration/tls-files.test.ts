import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/deps.js';
import { TlsFiles } from '../../src/http/tls-files.js';
import { makeCa, makeLeaf, SecretMount } from '../helpers/certs.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-tls-'));
  dirs.push(dir);
  return dir;
}

interface OpenConnection {
  fingerprint: string;
  /** Sends one HTTP request on this (kept-alive) connection and resolves with the raw answer. */
  ask: () => Promise<string>;
  close: () => void;
}

/** Connects over TLS and keeps the connection open; `fingerprint` is the server certificate's. */
function openConnection(port: number, ca: string): Promise<OpenConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      resolve({
        fingerprint: cert.fingerprint256,
        ask: () =>
          new Promise((answer) => {
            socket.once('data', (chunk: Buffer) => answer(chunk.toString('utf8')));
            socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
          }),
        close: () => socket.destroy(),
      });
    });
    socket.on('error', reject);
  });
}

describe('TlsFiles', () => {
  const logs: string[] = [];
  const logger = createLogger('info', { write: (line: string) => logs.push(line) });

  it('picks up a Kubernetes Secret ..data swap, refuses a half-rotated pair, and keeps open connections', async () => {
    const dir = tempDir();
    const ca = makeCa(path.join(dir, 'ca'));
    const first = makeLeaf(path.join(dir, 'one'), 'server', ca);
    const second = makeLeaf(path.join(dir, 'two'), 'server', ca);
    const mount = new SecretMount(path.join(dir, 'mount'));
    mount.publish(first);

    const files = new TlsFiles({ cert: mount.cert, key: mount.key, clientCA: undefined }, logger);
    const server: Server = createServer(await files.load(), (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const before = await openConnection(port, ca.cert);
      expect(before.fingerprint).toBe(first.fingerprint);
      expect(await files.reload()).toBeUndefined();

      // Half a rotation: the new certificate with the old key is not applied.
      const half = new SecretMount(path.join(dir, 'half'));
      half.publish({ cert: second.cert, key: first.key });
      const halfFiles = new TlsFiles({ cert: half.cert, key: half.key, clientCA: undefined }, logger);
      await expect(halfFiles.load()).rejects.toThrow(/do not form a usable certificate/);

      mount.publish({ cert: second.cert, key: first.key });
      expect(await files.reload()).toBeUndefined();
      expect(logs.some((l) => l.includes('keeping the current one'))).toBe(true);

      mount.publish(second);
      const next = await files.reload();
      expect(next).toBeDefined();
      if (next !== undefined) server.setSecureContext(next);
      const after = await openConnection(port, ca.cert);
      expect(after.fingerprint).toBe(second.fingerprint);
      after.close();
      // The connection made before the rotation was not dropped: it still answers.
      expect(await before.ask()).toMatch(/^HTTP\/1.1 200[\s\S]*ok$/);
      before.close();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('names the file that cannot be read', async () => {
    const dir = tempDir();
    const files = new TlsFiles({ cert: path.join(dir, 'missing.crt'), key: path.join(dir, 'missing.key'), clientCA: undefined }, logger);
    await expect(files.load()).rejects.toThrow(/tls.cert: cannot read .*missing.crt: ENOENT/);
  });
});
