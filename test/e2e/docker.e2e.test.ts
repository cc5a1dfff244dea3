// Real peers: the Docker Engine (Debian docker.io) configured by the daemon.json that `pullgate hosts docker --out`
// wrote pulls a Docker Hub `library/` image through registry-mirrors and a ghcr.io image by prefix, then runs them.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAccessLog } from '../../support/access-log.js';
import { type SeededRegistry, startClientUpstreams } from './support/client-upstreams.js';
import { logsOf } from '../../support/diagnostics.js';
import { startDockerd } from './support/dockerd.js';
import { runOk } from '../../support/proc.js';
import { PULLGATE_CLI, startFlags } from '../../support/pullgate.js';
import { type PullgateRequest, waitForPullgateLog, waitForPullgateRequest } from './support/pullgate-log.js';
import { useSuite } from './support/suite.js';

/** Keys an operator already had in daemon.json: `hosts docker --out` must keep them (issue 9 §2). */
const EXISTING_DAEMON_JSON = { 'log-level': 'info', 'max-concurrent-downloads': 2 };

describe('Docker Engine through pullgate (registry-mirrors and prefix pulls)', () => {
  const suite = useSuite('docker', async (ws) => {
    const up = await startClientUpstreams(ws);
    const etcDocker = await ws.mkdir('etc-docker');
    const daemonJson = join(etcDocker, 'daemon.json');
    await writeFile(daemonJson, `${JSON.stringify(EXISTING_DAEMON_JSON, null, 2)}\n`);
    const hosts = await runOk(process.execPath, [
      ...startFlags(), PULLGATE_CLI, 'hosts', 'docker', '--out', etcDocker, '--config', up.pg.configPath, '--mirror', up.pg.host,
    ]);
    const dockerd = await startDockerd(ws, daemonJson);
    return { ...up, daemonJson, hostsOutput: hosts.stdout.toString('utf8'), dockerd };
  });

  /** `docker pull ref`, then the image's RepoDigests. */
  const pull = async (ref: string): Promise<string[]> => {
    const { pg, hub, ghcr, dockerd } = suite().value;
    const res = await dockerd.docker(['pull', ref], { timeoutMs: 120_000 });
    expect(res.code, `docker pull ${ref}\n${res.stderr}\n${logsOf(pg.daemon, hub.registry.daemon, ghcr.registry.daemon, dockerd.daemon)}`).toBe(0);
    const inspect = await dockerd.dockerOk(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    return JSON.parse(inspect.stdout.toString('utf8')) as string[];
  };

  /** Manifest and blob reads the upstream registry answered, by user agent. */
  const upstreamReads = async (s: SeededRegistry): Promise<{ fromPullgate: string[]; fromOthers: string[] }> => {
    const reads = (await readAccessLog(s.registry.daemon.logPath)).filter(
      (e) => (e.method === 'GET' || e.method === 'HEAD') && e.uri.startsWith(`/v2/${s.repository}/`) && !e.userAgent.startsWith('skopeo/'),
    );
    return {
      fromPullgate: reads.filter((e) => e.userAgent.startsWith('pullgate/')).map((e) => `${e.method} ${e.uri} ${e.status}`),
      fromOthers: reads.filter((e) => !e.userAgent.startsWith('pullgate/')).map((e) => `${e.userAgent}: ${e.method} ${e.uri}`),
    };
  };

  it('hosts docker --out merged registry-mirrors into the existing daemon.json, and dockerd took it', async () => {
    const { pg, daemonJson, hostsOutput, dockerd } = suite().value;
    const written = JSON.parse(await readFile(daemonJson, 'utf8')) as Record<string, unknown>;
    expect(written, `daemon.json after \`pullgate hosts docker --out\` (it said: ${hostsOutput})`).toMatchObject({
      ...EXISTING_DAEMON_JSON,
      'registry-mirrors': [`http://${pg.host}`],
    });
    const mirrors = await dockerd.dockerOk(['info', '--format', '{{json .RegistryConfig.Mirrors}}']);
    expect(JSON.parse(mirrors.stdout.toString('utf8'))).toEqual([`http://${pg.host}/`]);
  });

  it('docker pull of a Docker Hub library/ image goes through registry-mirrors and records the pushed digest', async () => {
    const { pg, hub } = suite().value;
    const name = hub.repository.replace(/^library\//, '');
    const repoDigests = await pull(`${name}:${hub.tag}`);
    expect(repoDigests).toEqual([`${name}@${hub.image.manifestDigest}`]);

    // Docker resolves the tag (HEAD), then GETs the manifest by digest.
    const byDigest = `/v2/${hub.repository}/manifests/${hub.image.manifestDigest}`;
    // The pull has finished, but pullgate writes request lines up to a second later: wait for every blob line.
    const blobs = 1 + hub.image.layers.length;
    const blobGets = (lines: PullgateRequest[]): PullgateRequest[] =>
      lines.filter((r) => r.path.startsWith(`/v2/${hub.repository}/blobs/`) && r.method === 'GET' && r.status === 200);
    const lines = await waitForPullgateLog(
      pg.daemon.logPath,
      `GET ${byDigest} and ${blobs} blob GETs`,
      (all) => all.some((r) => r.method === 'GET' && r.path === byDigest && r.status === 200) && blobGets(all).length >= blobs,
    );
    expect(lines.some((r) => r.path === `/v2/${hub.repository}/manifests/${hub.tag}` && r.status === 200)).toBe(true);
    const mine = lines.filter((r) => r.path.startsWith(`/v2/${hub.repository}/`));
    for (const r of mine) expect(r, JSON.stringify(r)).toMatchObject({ registry: 'docker.io', repository: hub.repository });
    expect(blobGets(lines).length, 'each blob is fetched from pullgate once').toBe(blobs);

    const reads = await upstreamReads(hub);
    expect(reads.fromOthers, 'only pullgate may read from the upstream').toEqual([]);
    expect(reads.fromPullgate.filter((l) => l.startsWith(`GET /v2/${hub.repository}/manifests/`)).length).toBeGreaterThan(0);
  });

  it('docker pull by prefix (127.0.0.1:PORT/ghcr.io/…) reaches the ghcr.io registry key over plain HTTP', async () => {
    const { pg, ghcr } = suite().value;
    const repo = `${pg.host}/${ghcr.key}/${ghcr.repository}`;
    const repoDigests = await pull(`${repo}:${ghcr.tag}`);
    expect(repoDigests).toEqual([`${repo}@${ghcr.image.manifestDigest}`]);

    const byDigest = `/v2/${ghcr.key}/${ghcr.repository}/manifests/${ghcr.image.manifestDigest}`;
    const lines = await waitForPullgateRequest(pg.daemon.logPath, `GET ${byDigest}`, (r) => r.method === 'GET' && r.path === byDigest && r.status === 200);
    for (const r of lines.filter((l) => l.path.startsWith(`/v2/${ghcr.key}/`))) {
      expect(r, JSON.stringify(r)).toMatchObject({ registry: 'ghcr.io', repository: ghcr.repository });
    }
    const reads = await upstreamReads(ghcr);
    expect(reads.fromOthers, 'only pullgate may read from the upstream').toEqual([]);
    expect(reads.fromPullgate.length).toBeGreaterThan(0);
  });

  it('docker run --network none runs both pulled images (their layers unpacked as pushed)', async () => {
    const { pg, hub, ghcr, dockerd } = suite().value;
    const hubRun = await dockerd.dockerOk(['run', '--rm', '--network', 'none', `${hub.repository.replace(/^library\//, '')}:${hub.tag}`]);
    expect(hubRun.stdout.toString('utf8')).toBe(hub.image.message);
    const ghcrRun = await dockerd.dockerOk(['run', '--rm', '--network', 'none', `${pg.host}/${ghcr.key}/${ghcr.repository}:${ghcr.tag}`]);
    expect(ghcrRun.stdout.toString('utf8')).toBe(ghcr.image.message);
  });

  it('dockerd never fell back to the real Docker Hub', () => {
    const { dockerd } = suite().value;
    // A mirror that fails makes Docker retry at registry-1.docker.io; it says so in its log.
    const log = dockerd.daemon.logTail(100_000);
    expect(log).not.toMatch(/registry-1\.docker\.io|index\.docker\.io|auth\.docker\.io/);
  });
});
