// Real peers: podman (rootful, vfs storage) pulls a docker.io and a ghcr.io image through the registries.conf
// drop-in that `pullgate hosts podman --out` wrote; its debug log must show it used the mirror location.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readAccessLog } from '../../support/access-log.js';
import { type SeededRegistry, startClientUpstreams } from './support/client-upstreams.js';
import { logsOf } from '../../support/diagnostics.js';
import { isolatedPodman } from './support/podman.js';
import { runOk } from '../../support/proc.js';
import { PULLGATE_CLI, startFlags } from '../../support/pullgate.js';
import { useSuite } from './support/suite.js';

describe('podman through the registries.conf drop-in from `pullgate hosts podman`', () => {
  const suite = useSuite('podman', async (ws) => {
    const up = await startClientUpstreams(ws);
    // Documented use: --out names the drop-in directory itself (issue 9 §2).
    const dropInDir = await ws.mkdir('containers', 'registries.conf.d');
    const hosts = await runOk(process.execPath, [
      ...startFlags(), PULLGATE_CLI, 'hosts', 'podman', '--out', dropInDir, '--config', up.pg.configPath, '--mirror', up.pg.host,
    ]);
    const files = await readdir(dropInDir);
    const dropIn = files.length === 1 && files[0]?.endsWith('.conf') === true ? `${dropInDir}/${files[0]}` : undefined;
    if (dropIn === undefined) {
      throw new Error(
        `\`pullgate hosts podman --out ${dropInDir}\` should write one .conf file in that directory; it holds ` +
          `${JSON.stringify(files)} (it said: ${hosts.stdout.toString('utf8').trim()})`,
      );
    }
    const podman = await isolatedPodman(ws, dropIn);
    return { ...up, dropIn, podman };
  });

  /** `podman --log-level=debug pull ref`: the debug log, after checking the pull succeeded. */
  const pull = async (ref: string): Promise<string> => {
    const { pg, podman } = suite().value;
    const res = await podman.podman(['--log-level=debug', 'pull', ref], { timeoutMs: 120_000 });
    expect(res.code, `podman pull ${ref}\n${res.stderr.slice(-6000)}\n${logsOf(pg.daemon)}`).toBe(0);
    await writeFile(suite().ws.path(`podman-pull-${ref.replace(/[^a-z0-9]/gi, '_')}.log`), res.stderr);
    return res.stderr;
  };

  const imageDigest = async (ref: string): Promise<string> => {
    const { podman } = suite().value;
    return (await podman.podmanOk(['image', 'inspect', '--format', '{{.Digest}}', ref])).stdout.toString('utf8').trim();
  };

  const onlyPullgateRead = async (s: SeededRegistry): Promise<void> => {
    const reads = (await readAccessLog(s.registry.daemon.logPath)).filter(
      (e) => e.uri.startsWith(`/v2/${s.repository}/`) && !e.userAgent.startsWith('skopeo/'),
    );
    expect(reads.filter((e) => !e.userAgent.startsWith('pullgate/')).map((e) => `${e.userAgent}: ${e.method} ${e.uri}`)).toEqual([]);
    expect(reads.filter((e) => e.method === 'GET' && e.uri.includes('/manifests/')).length).toBeGreaterThan(0);
  };

  for (const which of ['hub', 'ghcr'] as const) {
    it(`podman pull ${which === 'hub' ? 'docker.io/library/…' : 'ghcr.io/…'} tries the mirror location and stores the pushed digest`, async () => {
      const { pg, dropIn, [which]: s } = suite().value;
      const ref = `${s.key}/${s.repository}:${s.tag}`;
      const debug = await pull(ref);
      const mirrorRef = `${pg.host}/${s.key}/${s.repository}:${s.tag}`;
      // The debug line is logfmt: msg="Trying to access \"127.0.0.1:PORT/docker.io/library/pgbox:1\"".
      const tried = [...debug.matchAll(/Trying to access \\?"([^"\\]+)\\?"/g)].map((m) => m[1]);
      expect(tried, `podman should try the mirror location only (drop-in ${dropIn}:\n${await readFile(dropIn, 'utf8')})`).toEqual([mirrorRef]);
      expect(await imageDigest(ref)).toBe(s.image.manifestDigest);
      await onlyPullgateRead(s);
    });
  }

  it('podman run --network none runs the pulled docker.io image', async () => {
    const { hub, podman } = suite().value;
    const ran = await podman.podman(['run', '--rm', '--network', 'none', `${hub.key}/${hub.repository}:${hub.tag}`]);
    expect(ran.code, `podman run\n${ran.stderr}`).toBe(0);
    expect(ran.stdout.toString('utf8')).toBe(hub.image.message);
  });
});
