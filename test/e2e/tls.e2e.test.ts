// Real peers over HTTPS: pullgate serves `tls:` from a Kubernetes-style Secret mount with a certificate from a CA that
// openssl generates here; skopeo (--src-cert-dir), containerd (hosts.toml `ca`) and the Docker Engine (certs.d) pull,
// each refusing the mirror without the CA; a rotation of the Secret is picked up while skopeo keeps pulling.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { TLS_RELOAD_INTERVAL_MS } from '../../src/http/tls-files.js';
import { type CertFiles, SecretMount, makeCa, makeLeaf } from '../helpers/certs.js';
import { logsOf } from '../../support/diagnostics.js';
import { type RunResult, run, runOk } from '../../support/proc.js';
import { PULLGATE_CLI, startFlags, startPullgate } from '../../support/pullgate.js';
import { startRegistry } from '../../support/registry.js';
import { skopeoPush } from '../../support/skopeo.js';
import { waitFor } from '../../support/wait.js';
import { startConnectProxy } from './support/connect-proxy.js';
import { type Containerd, imageDigestFromLs, startContainerd } from './support/containerd.js';
import { startDockerd } from './support/dockerd.js';
import { waitForPullgateRequest } from './support/pullgate-log.js';
import { buildRunnableImage, readStaticBusybox } from './support/runnable-image.js';
import { useSuite } from './support/suite.js';

/**
 * The name dockerd reaches pullgate by (through a CONNECT proxy). dockerd treats every registry that resolves into
 * 127.0.0.0/8 as insecure — it then skips certificate verification and never reads certs.d — so a loopback address
 * cannot show that docker verifies the CA. A `.test` name does not resolve, so dockerd counts it as secure.
 */
const DOCKER_NAME = 'pullgate.test';
const REPOSITORY = 'library/pgbox';
const TAG = '1';
/** Where dockerd reads registry CAs; it has no flag to move it (only rootless mode uses another path). */
const DOCKER_CERTS_D = '/etc/docker/certs.d';

const pullgateCli = (args: readonly string[]): Promise<RunResult> => runOk(process.execPath, [...startFlags(), PULLGATE_CLI, ...args]);

/** The SHA-256 fingerprint of the certificate a new TLS handshake with 127.0.0.1:port gets, verified against `ca`. */
async function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

/** GET over a given keep-alive agent: the status and the TLS socket it went over. */
async function getOver(agent: Agent, url: string): Promise<{ status: number; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent }, (res) => {
      const { socket } = res;
      res.resume();
      if (!(socket instanceof TLSSocket)) {
        reject(new Error(`${url}: not a TLS connection`));
        return;
      }
      res.once('end', () => resolve({ status: res.statusCode ?? 0, socket }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('pullgate over TLS: skopeo, containerd and docker verify a private CA; rotation while pulling', () => {
  const suite = useSuite('tls', async (ws) => {
    const pki = ws.path('pki');
    const ca = makeCa(pki);
    const leaves: CertFiles[] = [1, 2].map((n) => makeLeaf(pki, `server-${n}`, ca, DOCKER_NAME, 'server', [DOCKER_NAME]));
    const secret = new SecretMount(ws.path('secret'));
    secret.publish(leaves[0] as CertFiles);

    const seeder = { username: 'seeder', password: 'push-secret-tls-4c1b' };
    const puller = { username: 'alice', password: 'pull-secret-tls-8e2d' };
    const registry = await startRegistry(ws, 'registry', { type: 'htpasswd', users: { [seeder.username]: seeder.password, [puller.username]: puller.password } });
    const image = await buildRunnableImage(ws.path('layout'), TAG, 'tls', await readStaticBusybox());
    await skopeoPush(image.dir, TAG, `${registry.host}/${REPOSITORY}:${TAG}`, `${seeder.username}:${seeder.password}`);

    const pg = await startPullgate(
      ws,
      'pullgate',
      {
        defaultRegistry: 'docker.io',
        registries: [{ key: 'docker.io', url: registry.url, ...puller }],
        tls: { cert: secret.cert, key: secret.key },
      },
      { ca: ca.cert },
    );
    const port = Number(pg.host.split(':')[1]);
    return { ca, leaves, secret, registry, image, pg, port, caPem: await readFile(ca.cert) };
  });

  it('serve answers over HTTPS with the published certificate', async () => {
    const { pg, port, caPem, leaves } = suite().value;
    expect(pg.url).toBe(`https://${pg.host}`);
    expect(await servedFingerprint(port, caPem)).toBe(leaves[0]?.fingerprint);
  });

  describe('skopeo', () => {
    const copy = async (certDir: string | undefined, out: string): Promise<RunResult> => {
      const { pg } = suite().value;
      return run('skopeo', [
        '--insecure-policy', 'copy', '--src-no-creds', ...(certDir === undefined ? [] : ['--src-cert-dir', certDir]),
        `docker://${pg.host}/${REPOSITORY}:${TAG}`, `oci:${out}:${TAG}`,
      ]);
    };

    it('without the CA refuses the certificate', async () => {
      const { ws } = suite();
      const res = await copy(undefined, ws.path('skopeo-no-ca'));
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/x509: certificate signed by unknown authority|certificate verify failed/);
    });

    it('with --src-cert-dir DIR/ca.crt copies the image, digest as pushed', async () => {
      const { ws, value } = suite();
      const certDir = await ws.mkdir('skopeo-certs');
      await writeFile(join(certDir, 'ca.crt'), value.caPem);
      const out = ws.path('skopeo-out');
      const res = await copy(certDir, out);
      expect(res.code, `${res.stderr}\n${logsOf(value.pg.daemon, value.registry.daemon)}`).toBe(0);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([value.image.manifestDigest]);
    });
  });

  describe('containerd (ctr --hosts-dir, hosts.toml from `pullgate hosts containerd --ca`)', () => {
    const ref = `docker.io/${REPOSITORY}:${TAG}`;
    const cd = (() => {
      let started: Promise<Containerd> | undefined;
      return () => (started ??= startContainerd(suite().ws));
    })();
    const pull = async (c: Containerd, hostsDir: string): Promise<RunResult> =>
      c.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', ref]);

    it('writes an https:// mirror with ca = the path given', async () => {
      const { ws, value } = suite();
      const out = ws.path('containerd-certs.d');
      await pullgateCli(['hosts', 'containerd', '--config', value.pg.configPath, '--out', out, '--ca', value.ca.cert, '--mirror', value.pg.host]);
      const toml = await readFile(join(out, 'docker.io', 'hosts.toml'), 'utf8');
      expect(toml).toContain(`[host."https://${value.pg.host}"]`);
      expect(toml).toContain(`ca = ${JSON.stringify(value.ca.cert)}`);
    });

    it('without the ca line, ctr refuses the certificate', async () => {
      const { ws } = suite();
      const written = await readFile(ws.path('containerd-certs.d', 'docker.io', 'hosts.toml'), 'utf8');
      // The same file minus `ca`, and a server nobody listens on, so the error is the mirror's.
      const dir = ws.path('containerd-no-ca', 'docker.io');
      await mkdir(dir, { recursive: true });
      const stripped = written
        .split('\n')
        .filter((l) => !/^\s*ca\s*=/.test(l))
        .map((l) => (l.startsWith('server') ? 'server = "http://127.0.0.1:1"' : l))
        .join('\n');
      await writeFile(join(dir, 'hosts.toml'), stripped);
      const res = await pull(await cd(), ws.path('containerd-no-ca'));
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/x509: certificate signed by unknown authority|failed to verify certificate/);
    });

    it('with the written hosts.toml, ctr pulls through pullgate over TLS', async () => {
      const { ws, value } = suite();
      const c = await cd();
      const res = await pull(c, ws.path('containerd-certs.d'));
      expect(res.code, `${res.stderr}\n${logsOf(value.pg.daemon, c.daemon)}`).toBe(0);
      const ls = (await c.ctrOk(['images', 'ls'])).stdout.toString('utf8');
      expect(imageDigestFromLs(ls, ref), ls).toBe(value.image.manifestDigest);
      const manifest = `/v2/${REPOSITORY}/manifests/${value.image.manifestDigest}?ns=docker.io`;
      await waitForPullgateRequest(value.pg.daemon.logPath, `GET ${manifest}`, (r) => r.path === manifest && r.status === 200);
    });
  });

  describe('docker (certs.d/<host:port>/ca.crt from `pullgate hosts docker --ca`)', () => {
    const dockerHost = (): string => `${DOCKER_NAME}:${suite().value.port}`;
    const docker = (() => {
      let started: ReturnType<typeof setup> | undefined;
      const setup = async () => {
        const { ws, value } = suite();
        const etcDocker = await ws.mkdir('etc-docker');
        await pullgateCli(['hosts', 'docker', '--config', value.pg.configPath, '--out', etcDocker, '--ca', value.ca.cert, '--mirror', dockerHost()]);
        const proxy = await startConnectProxy(new Map([[dockerHost(), `127.0.0.1:${value.port}`]]));
        ws.defer(() => proxy.close());
        const dockerd = await startDockerd(ws, join(etcDocker, 'daemon.json'), 'dockerd', { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '' });
        return { etcDocker, proxy, dockerd };
      };
      return () => (started ??= setup());
    })();

    it('without ca.crt in /etc/docker/certs.d, docker refuses the certificate', async () => {
      const { dockerd } = await docker();
      const target = join(DOCKER_CERTS_D, dockerHost());
      expect(existsSync(target), `${target} must not exist before the test`).toBe(false);
      const res = await dockerd.docker(['pull', `${dockerHost()}/${REPOSITORY}:${TAG}`], { timeoutMs: 60_000 });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/x509: certificate signed by unknown authority/);
    });

    it('with the written certs.d placed in /etc/docker/certs.d, docker pulls via the https mirror and by host:port', async () => {
      const { ws, value } = suite();
      const { etcDocker, proxy, dockerd } = await docker();
      const daemonJson = JSON.parse(await readFile(join(etcDocker, 'daemon.json'), 'utf8')) as Record<string, unknown>;
      expect(daemonJson['registry-mirrors']).toEqual([`https://${dockerHost()}`]);
      expect(daemonJson['insecure-registries']).toBeUndefined();
      const certsDirExisted = existsSync(DOCKER_CERTS_D);
      const target = join(DOCKER_CERTS_D, dockerHost());
      await mkdir(target, { recursive: true });
      ws.defer(() => rm(certsDirExisted ? target : DOCKER_CERTS_D, { recursive: true, force: true }));
      await writeFile(join(target, 'ca.crt'), await readFile(join(etcDocker, 'certs.d', dockerHost(), 'ca.crt')));

      const logs = (): string => logsOf(value.pg.daemon, dockerd.daemon);
      const viaMirror = await dockerd.docker(['pull', `pgbox:${TAG}`], { timeoutMs: 60_000 });
      expect(viaMirror.code, `${viaMirror.stderr}\n${logs()}`).toBe(0);
      const direct = await dockerd.docker(['pull', `${dockerHost()}/${REPOSITORY}:${TAG}`], { timeoutMs: 60_000 });
      expect(direct.code, `${direct.stderr}\n${logs()}`).toBe(0);
      const digests = await dockerd.dockerOk(['image', 'inspect', '--format', '{{json .RepoDigests}}', `pgbox:${TAG}`]);
      expect(JSON.parse(digests.stdout.toString('utf8'))).toContain(`pgbox@${value.image.manifestDigest}`);
      const ran = await dockerd.dockerOk(['run', '--rm', '--network', 'none', `pgbox:${TAG}`]);
      expect(ran.stdout.toString('utf8')).toBe(value.image.message);
      // Everything went through the tunnel to pullgate: no fallback to Docker Hub, nothing else asked for.
      expect(proxy.refused).toEqual([]);
      expect(new Set(proxy.tunnelled)).toEqual(new Set([dockerHost()]));
    });
  });

  it('a rotated Secret is served to new handshakes within the reload interval while skopeo keeps pulling', async () => {
    const { ws, value } = suite();
    const { secret, leaves, port, caPem, pg } = value;
    const certDir = ws.path('skopeo-certs');
    const next = leaves[1] as CertFiles;

    // An open keep-alive connection from before the rotation.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: caPem });
    ws.defer(() => agent.destroy());
    const before = await getOver(agent, `${pg.url}/healthz`);
    expect(before.socket.getPeerCertificate().fingerprint256).toBe(leaves[0]?.fingerprint);

    const state = { pulling: true };
    const results: RunResult[] = [];
    const loop = (async () => {
      for (let i = 0; state.pulling; i++) {
        results.push(
          await run('skopeo', ['--insecure-policy', 'copy', '--src-no-creds', '--src-cert-dir', certDir, `docker://${pg.host}/${REPOSITORY}:${TAG}`, `oci:${ws.path(`rotation-${i}`)}:${TAG}`]),
        );
      }
    })();
    const published = Date.now();
    secret.publish(next);
    await waitFor(async () => ((await servedFingerprint(port, caPem)) === next.fingerprint ? true : undefined), {
      what: 'a new handshake to get the rotated certificate',
      timeoutMs: TLS_RELOAD_INTERVAL_MS + 5_000,
      intervalMs: 200,
      describe: () => pg.daemon.logTail(),
    });
    const pickedUpMs = Date.now() - published;
    const countAtSwitch = results.length;
    // Keep pulling until at least one whole pull ran after the switch.
    await waitFor(() => Promise.resolve(results.length >= countAtSwitch + 2 ? true : undefined), { what: 'two more skopeo pulls', timeoutMs: 30_000 });
    state.pulling = false;
    await loop;
    process.stderr.write(`e2e tls: rotation picked up after ${pickedUpMs} ms; ${results.length} skopeo pulls during it\n`);

    expect(pickedUpMs).toBeLessThanOrEqual(TLS_RELOAD_INTERVAL_MS + 1_500);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const after = await getOver(agent, `${pg.url}/healthz`);
    expect(after.status).toBe(200);
    expect(after.socket, 'the keep-alive connection survived the rotation').toBe(before.socket);
    expect(after.socket.getPeerCertificate().fingerprint256).toBe(leaves[0]?.fingerprint);
  });
});
