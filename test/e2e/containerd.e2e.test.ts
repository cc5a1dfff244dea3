// Real peers: containerd (ctr with a hosts.toml mirror) pulls anonymously through pullgate from a registry that needs credentials.
import { describe, expect, it } from 'vitest';
import { readAccessLog } from '../../support/access-log.js';
import { type Containerd, imageDigestFromLs, startContainerd, writeHostsToml } from './support/containerd.js';
import { logsOf } from '../../support/diagnostics.js';
import { freePort } from '../../support/ports.js';
import { type Pullgate, startPullgate } from '../../support/pullgate.js';
import { useSuite } from './support/suite.js';
import { type AuthFlavour, type Upstream, startUpstream } from './support/upstream.js';

async function pull(cd: Containerd, hostsDir: string, ref: string, pg: Pullgate, up: Upstream): Promise<void> {
  const res = await cd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', ref]);
  expect(res.code, `ctr images pull ${ref}\n${res.stderr}\n${logsOf(pg.daemon, up.registry.daemon, cd.daemon)}`).toBe(0);
}

describe.each<AuthFlavour>(['htpasswd', 'token'])('containerd through pullgate, upstream with %s auth', (flavour) => {
  const suite = useSuite(`containerd-${flavour}`, async (ws) => {
    const up = await startUpstream(ws, flavour);
    const pg = await startPullgate(ws, 'pullgate', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: up.registry.url, username: up.puller.username, password: up.puller.password }],
    });
    const cd = await startContainerd(ws);
    // `server` is a port nobody listens on: the pull can only succeed through the mirror, pullgate.
    const deadServer = `http://127.0.0.1:${await freePort()}`;
    const hostsDir = await writeHostsToml(ws.path('certs.d'), up.registry.host, deadServer, [
      { url: pg.url, capabilities: ['pull', 'resolve'] },
    ]);
    const ref = `${up.registry.host}/${up.repository}:${up.tag}`;
    return { up, pg, cd, hostsDir, ref };
  });

  it('ctr images pull via the hosts.toml mirror records the pushed manifest digest', async () => {
    const { up, pg, cd, hostsDir, ref } = suite().value;
    await pull(cd, hostsDir, ref, pg, up);
    const ls = await cd.ctrOk(['images', 'ls']);
    expect(imageDigestFromLs(ls.stdout.toString('utf8'), ref), ls.stdout.toString('utf8')).toBe(up.image.manifestDigest);
  });

  it('every blob containerd stored is byte-identical with what was pushed', async () => {
    const { up, cd } = suite().value;
    for (const [digest, bytes] of up.image.blobs) {
      const got = await cd.ctrOk(['content', 'get', digest]);
      expect(got.stdout.equals(bytes), `ctr content get ${digest}: ${got.stdout.length} bytes, expected ${bytes.length}`).toBe(true);
    }
  });

  it('containerd went through pullgate (with ?ns=), never straight to the registry', async () => {
    const { up } = suite().value;
    const entries = await readAccessLog(up.registry.daemon.logPath);
    const fromContainerd = entries.filter((e) => e.userAgent.startsWith('containerd/'));
    expect(fromContainerd).toEqual([]);
    const reads = entries.filter((e) => !e.userAgent.startsWith('skopeo/') && (e.method === 'GET' || e.method === 'HEAD'));
    expect(reads.length, 'the registry saw no read from pullgate').toBeGreaterThan(0);
    for (const e of reads) expect(e.uri, 'pullgate must not forward the ?ns= parameter upstream').not.toMatch(/[?&]ns=/);
  });

  it('a second containerd (empty content store) pulling the same image is served from the cache', async () => {
    const { ws, value } = suite();
    const { up, pg, hostsDir, ref } = value;
    const upstreamReads = async (): Promise<{ blobGets: number; manifestRequests: number }> => {
      const entries = (await readAccessLog(up.registry.daemon.logPath)).filter((e) => !e.userAgent.startsWith('skopeo/'));
      return {
        blobGets: entries.filter((e) => e.method === 'GET' && e.uri.includes('/blobs/')).length,
        manifestRequests: entries.filter((e) => e.uri.includes('/manifests/')).length,
      };
    };
    const before = await upstreamReads();
    const second = await startContainerd(ws, 'containerd-second');
    await pull(second, hostsDir, ref, pg, up);
    for (const [digest, bytes] of up.image.blobs) {
      const got = await second.ctrOk(['content', 'get', digest]);
      expect(got.stdout.equals(bytes), `second containerd: ctr content get ${digest}`).toBe(true);
    }
    // Blobs are content-addressed and the tag is within tagTTL (5m by default): nothing needs upstream.
    const after = await upstreamReads();
    expect(
      { blobGets: after.blobGets - before.blobGets, manifestRequests: after.manifestRequests - before.manifestRequests },
      `upstream requests during a pull of a cached image\n${logsOf(pg.daemon)}`,
    ).toEqual({ blobGets: 0, manifestRequests: 0 });
  });

  if (flavour === 'token') {
    it('pullgate asked the token server for pull scopes only', () => {
      const { up } = suite().value;
      const ts = up.tokenServer;
      if (ts === undefined) throw new Error('token flavour without a token server');
      const fromPuller = ts.requests.filter((r) => r.user === up.puller.username);
      expect(fromPuller.length).toBeGreaterThan(0);
      for (const r of fromPuller) {
        expect(r.authenticated, JSON.stringify(r)).toBe(true);
        for (const scope of r.scopes) expect(scope).toBe(`repository:${up.repository}:pull`);
      }
    });
  }
});
