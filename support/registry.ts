import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { freePort } from './ports.js';
import { type Daemon, startDaemon } from './proc.js';
import type { TokenServer } from './token-server.js';
import { waitForHttp } from './wait.js';
import type { Workspace } from './workspace.js';

export type RegistryAuth =
  | { type: 'htpasswd'; users: Record<string, string> }
  | { type: 'token'; tokenServer: TokenServer }
  /** Anonymous clients (e.g. a pull-through proxy in front of an authenticated upstream). */
  | { type: 'none' };

/** Pull-through cache mode (distribution's `proxy:` section): an upstream and the credentials it is pulled with. */
export interface RegistryProxyConfig {
  remoteurl: string;
  username: string;
  password: string;
}

/** A running distribution registry (`docker-registry serve`) on 127.0.0.1 with filesystem storage. */
export interface Registry {
  /** host:port, as it appears in image references. */
  host: string;
  url: string;
  daemon: Daemon;
}

function authSection(auth: RegistryAuth, htpasswdPath: string): string {
  if (auth.type === 'none') return '';
  if (auth.type === 'htpasswd') {
    return `auth:\n  htpasswd:\n    realm: pullgate-e2e\n    path: ${JSON.stringify(htpasswdPath)}\n`;
  }
  const t = auth.tokenServer;
  return (
    'auth:\n  token:\n' +
    `    realm: ${JSON.stringify(t.realm)}\n` +
    `    service: ${JSON.stringify(t.service)}\n` +
    `    issuer: ${JSON.stringify(t.issuer)}\n` +
    `    rootcertbundle: ${JSON.stringify(t.certPath)}\n`
  );
}

function proxySection(proxy: RegistryProxyConfig | undefined): string {
  if (proxy === undefined) return '';
  return (
    'proxy:\n' +
    `  remoteurl: ${JSON.stringify(proxy.remoteurl)}\n` +
    `  username: ${JSON.stringify(proxy.username)}\n` +
    `  password: ${JSON.stringify(proxy.password)}\n`
  );
}

/**
 * Starts `docker-registry serve` with htpasswd (bcrypt), token or no auth, optionally as a pull-through proxy;
 * resolves once /v2/ challenges (401), or answers 200 without auth.
 */
export async function startRegistry(
  ws: Workspace,
  name: string,
  auth: RegistryAuth,
  opts: { proxy?: RegistryProxyConfig } = {},
): Promise<Registry> {
  const dir = await ws.mkdir(name);
  const storage = await ws.mkdir(name, 'storage');
  const htpasswdPath = ws.path(name, 'htpasswd');
  if (auth.type === 'htpasswd') {
    const lines = Object.entries(auth.users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 6)}`);
    await writeFile(htpasswdPath, `${lines.join('\n')}\n`);
  }
  const port = await freePort();
  const configPath = ws.path(name, 'config.yml');
  await writeFile(
    configPath,
    'version: 0.1\n' +
      'log:\n  level: info\n  accesslog:\n    disabled: false\n' +
      `storage:\n  filesystem:\n    rootdirectory: ${JSON.stringify(storage)}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(16).toString('hex')}\n` +
      'health:\n  storagedriver:\n    enabled: false\n' +
      authSection(auth, htpasswdPath) +
      proxySection(opts.proxy),
  );
  const daemon = startDaemon({
    name: `docker-registry (${name})`,
    command: 'docker-registry',
    args: ['serve', configPath],
    logPath: ws.path(`${name}.log`),
    cwd: dir,
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
  });
  ws.defer(() => daemon.stop());
  const url = `http://127.0.0.1:${port}`;
  const ready = auth.type === 'none' ? 200 : 401;
  await waitForHttp(`${url}/v2/`, ready, {
    what: `${daemon.name} to answer ${ready} on ${url}/v2/`,
    abortIf: () => { daemon.assertRunning(); },
    describe: () => daemon.logTail(),
  });
  return { host: `127.0.0.1:${port}`, url, daemon };
}
