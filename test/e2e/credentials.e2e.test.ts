// Real peers: pullgate takes its upstream login from a docker config.json or a containers auth.json
// instead of the YAML, and skopeo pulls through it from a distribution registry that needs credentials.
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { logsOf } from '../../support/diagnostics.js';
import { sha256Digest } from '../../support/oci-layout.js';
import { startPullgate } from '../../support/pullgate.js';
import { skopeoInspectRaw } from '../../support/skopeo.js';
import { useSuite } from './support/suite.js';
import { type AuthFlavour, startUpstream } from './support/upstream.js';

type FileShape = 'docker config.json (auth field)' | 'containers auth.json (namespaced username/password)';

describe.each<[AuthFlavour, FileShape]>([
  ['htpasswd', 'docker config.json (auth field)'],
  ['token', 'containers auth.json (namespaced username/password)'],
])('skopeo through pullgate, upstream with %s auth, login from %s', (flavour, shape) => {
  const suite = useSuite(`credentials-${flavour}`, async (ws) => {
    const up = await startUpstream(ws, flavour);
    const { username, password } = up.puller;
    const dockerShape = shape.startsWith('docker');
    const file = ws.path(dockerShape ? 'config.json' : 'auth.json');
    const document = dockerShape
      ? { auths: { [`http://${up.registry.host}/v2/`]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } }
      : { auths: { [up.registry.host]: { auth: Buffer.from('wrong:login').toString('base64') }, [`${up.registry.host}/${up.repository.split('/')[0] ?? ''}`]: { username, password } } };
    await writeFile(file, JSON.stringify(document));
    const pg = await startPullgate(ws, 'pullgate', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: up.registry.url, username: '', password: '', credentialsFile: file }],
    });
    return { up, pg };
  });

  it('skopeo inspect --raw returns the pushed manifest through pullgate', async () => {
    const { up, pg } = suite().value;
    const ref = `${pg.host}/${up.repository}:${up.tag}`;
    const res = await skopeoInspectRaw(ref);
    expect(res.code, `skopeo inspect --raw ${ref}\n${res.stderr}\n${logsOf(pg.daemon, up.registry.daemon)}`).toBe(0);
    expect(sha256Digest(res.stdout)).toBe(up.image.manifestDigest);
  });

  it("pullgate's log never contains the password from the file", async () => {
    const { up, pg } = suite().value;
    const log = await readFile(pg.daemon.logPath, 'utf8');
    expect(log.includes(up.puller.password)).toBe(false);
  });
});
