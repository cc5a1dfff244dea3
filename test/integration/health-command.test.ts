import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, healthTarget } from '../../src/cli/health-command.js';
import { loadConfigText } from '../../src/config/load.js';
import { makeCa, makeLeaf } from '../helpers/certs.js';
import { harness, type Harness } from '../helpers/harness.js';
import { runCliFromSource, type CliRun } from '../helpers/cli-from-source.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-health-'));

/** Runs `pullgate health` from source (tsx), as the container's HEALTHCHECK runs the built CLI. */
function run(args: string[]): Promise<CliRun> {
  return runCliFromSource(args, { PATH: process.env.PATH, HOME: dir, PULLGATE_CONFIG: '' });
}


function configFile(name: string, yaml: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `registries:\n  docker.io: {}\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n${yaml}`);
  return file;
}

let plain: Harness;
let plainPort = 0;
let tlsServer: Server;
let tlsPort = 0;
let tlsStatus = 200;
let cert = '';
let key = '';

beforeAll(async () => {
  plain = harness('registries:\n  docker.io: {}\n');
  plainPort = Number(new URL(await plain.listen()).port);
  // A listener whose certificate a private CA signed, which the checking process does not trust.
  const ca = makeCa(path.join(dir, 'pki'));
  const leaf = makeLeaf(path.join(dir, 'pki'), 'server', ca, 'pullgate.lan', 'server', ['pullgate.lan']);
  cert = leaf.cert;
  key = leaf.key;
  tlsServer = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    res.writeHead(req.url === '/healthz' ? tlsStatus : 404, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  tlsPort = (tlsServer.address() as AddressInfo).port;
});

afterAll(async () => {
  await plain.close();
  tlsServer.closeAllConnections();
  await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('pullgate health', () => {
  it("dials the config's listen (every interface on loopback) with https when tls: is set", () => {
    const load = (yaml: string): ReturnType<typeof loadConfigText> => loadConfigText(`registries:\n  docker.io: {}\n${yaml}`, {}, 'test', '/etc/pullgate');
    expect(healthTarget(load('listen: 0.0.0.0:5000\n')).url).toBe('http://127.0.0.1:5000/healthz');
    expect(healthTarget(load('listen: "[::]:6000"\n')).url).toBe('http://[::1]:6000/healthz');
    expect(healthTarget(load('listen: 10.0.0.5:5443\ntls: { cert: tls.crt, key: tls.key }\n'))).toEqual({ url: 'https://10.0.0.5:5443/healthz', tls: true, mutual: false });
  });

  it('passes against pullgate over plain HTTP and fails on a port nobody listens on', async () => {
    expect(await checkHealth(healthTarget({ listen: { host: '127.0.0.1', port: plainPort }, tls: undefined }))).toEqual({
      ok: true,
      detail: `http://127.0.0.1:${plainPort}/healthz: 200`,
    });
    const closed = await checkHealth(healthTarget({ listen: { host: '127.0.0.1', port: 1 }, tls: undefined }));
    expect(closed.ok).toBe(false);
    expect(closed.detail).toMatch(/ECONNREFUSED/);
  });

  it("passes over TLS with a certificate the checking process does not trust (its own listener), and fails on a non-200", async () => {
    const target = healthTarget({ listen: { host: '0.0.0.0', port: tlsPort }, tls: { cert, key, clientCA: undefined } });
    expect(await checkHealth(target)).toEqual({ ok: true, detail: `https://127.0.0.1:${tlsPort}/healthz: 200` });
    tlsStatus = 503;
    try {
      expect(await checkHealth(target)).toEqual({ ok: false, detail: `https://127.0.0.1:${tlsPort}/healthz: 503` });
    } finally {
      tlsStatus = 200;
    }
    // Plain HTTP to a TLS listener (the old hard-coded HEALTHCHECK) does not pass.
    expect((await checkHealth(healthTarget({ listen: { host: '127.0.0.1', port: tlsPort }, tls: undefined }))).ok).toBe(false);
  });

  it('exits 0 for a plain and a TLS config whose server answers, and 1 when none does', async () => {
    const [plainRun, tlsRun, downRun] = await Promise.all([
      run(['health', '--config', configFile('plain.yaml', `listen: 127.0.0.1:${plainPort}\n`)]),
      run(['health', '--config', configFile('tls.yaml', `listen: 0.0.0.0:${tlsPort}\ntls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }\n`)]),
      run(['health', '--config', configFile('down.yaml', `listen: 127.0.0.1:${plainPort}\n`), '--listen', '127.0.0.1:1']),
    ]);
    expect(plainRun).toMatchObject({ status: 0, stderr: '' });
    expect(plainRun.stdout).toBe(`pullgate: health: ok: http://127.0.0.1:${plainPort}/healthz: 200\n`);
    expect(tlsRun).toMatchObject({ status: 0, stderr: '' });
    expect(tlsRun.stdout).toContain(`https://127.0.0.1:${tlsPort}/healthz: 200`);
    expect(downRun.status).toBe(1);
    expect(downRun.stderr).toMatch(/^pullgate: health: failing: http:\/\/127\.0\.0\.1:1\/healthz: .*ECONNREFUSED/);
  });
});
