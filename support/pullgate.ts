import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { type Daemon, startDaemon } from './proc.js';
import { waitFor, waitForHttp } from './wait.js';
import type { Workspace } from './workspace.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
/** The CLI under test: the build output, or `$PULLGATE_E2E_CLI` (e.g. an installed copy). */
export const PULLGATE_CLI = process.env.PULLGATE_E2E_CLI ?? join(REPO_ROOT, 'dist', 'cli.js');

/** One upstream registry entry of pullgate's config. */
export interface UpstreamEntry {
  /** Registry key (host[:port]), as clients name it. */
  key: string;
  url: string;
  username: string;
  password: string;
  /** When set, pullgate reads the login from this docker config.json / auth.json (`auth: {type: docker-config}`) instead of the YAML. */
  credentialsFile?: string;
}

export interface PullgateConfigInput {
  listen: string;
  storagePath: string;
  defaultRegistry: string;
  registries: readonly UpstreamEntry[];
  aliases?: Record<string, string>;
  /** The `cache` section (durations as in the config file, e.g. `5m`); pullgate's defaults when absent. */
  cache?: { tagTTL?: string; staleIfError?: string };
  /** The `tls` section (PEM paths): pullgate serves HTTPS. */
  tls?: { cert: string; key: string; clientCA?: string };
  /** The `clients` section as written (htpasswd, anonymous, groups, access, limits …). */
  clients?: Record<string, unknown>;
}

const q = (s: string): string => JSON.stringify(s);

/** Renders pullgate's YAML config (DESIGN §1.2); strings are JSON-quoted, which YAML accepts. */
export function renderPullgateConfig(c: PullgateConfigInput): string {
  const lines = [`listen: ${q(c.listen)}`, `storage: { path: ${q(c.storagePath)} }`, `defaultRegistry: ${q(c.defaultRegistry)}`, 'registries:'];
  for (const r of c.registries) {
    const auth = r.credentialsFile === undefined
      ? `{ type: basic, username: ${q(r.username)}, password: ${q(r.password)} }`
      : `{ type: docker-config, path: ${q(r.credentialsFile)} }`;
    lines.push(`  ${q(r.key)}:`, `    url: ${q(r.url)}`, `    auth: ${auth}`);
  }
  const cache: string[] = [];
  if (c.cache?.tagTTL !== undefined) cache.push(`tagTTL: ${q(c.cache.tagTTL)}`);
  if (c.cache?.staleIfError !== undefined) cache.push(`staleIfError: ${q(c.cache.staleIfError)}`);
  if (cache.length > 0) lines.push(`cache: { ${cache.join(', ')} }`);
  const aliases = Object.entries(c.aliases ?? {});
  if (aliases.length > 0) {
    lines.push('aliases:', ...aliases.map(([alias, key]) => `  ${q(alias)}: ${q(key)}`));
  }
  // JSON is a YAML flow mapping.
  if (c.tls !== undefined) lines.push(`tls: ${JSON.stringify(c.tls)}`);
  if (c.clients !== undefined) lines.push(`clients: ${JSON.stringify(c.clients)}`);
  return `${lines.join('\n')}\n`;
}

/** The node flags `npm start` runs pullgate with (package.json), so the tests and the bench run the same process. */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.start ?? '';
  const flags = /^node((?:\s+--\S+)*)\s+dist\/cli\.js serve$/.exec(start)?.[1];
  if (flags === undefined) throw new Error(`e2e: cannot read the node flags from the start script: ${start}`);
  return flags.split(/\s+/).filter((flag) => flag !== '');
}

/** Extra node flags for every pullgate started here (e.g. `--cpu-prof`), from PULLGATE_NODE_ARGS; for profiling. */
export function nodeArgs(): string[] {
  return (process.env.PULLGATE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

/** A running `node dist/cli.js serve`. */
export interface Pullgate {
  /** host:port clients pull from. */
  host: string;
  url: string;
  daemon: Daemon;
  configPath: string;
}

/** Where a pullgate keeps its data and what it must answer before it counts as started. */
export interface StartOptions {
  /** An existing storage directory (default: a new `<name>/data` in the workspace). */
  storagePath?: string;
  /** The path that must answer 200 (default /healthz; /readyz also waits for the storage). */
  readyPath?: string;
  /** How often readiness is polled (default 100 ms; the bench's start-up figure polls every 10 ms). */
  pollMs?: number;
  /** More arguments of `pullgate serve` (e.g. `--workers 2`). */
  serveArgs?: readonly string[];
  /**
   * `--workers` of `serve` (default 1: the caller watches one pid); 'default' passes no `--workers`, so pullgate
   * picks its own count (one per usable core), exactly as `npm start` runs it.
   */
  workers?: number | 'default';
  /** The host of `listen` (default 127.0.0.1): a name must resolve to 127.0.0.0/8 (tests listen on loopback only). */
  listenHost?: string;
  /** With `tls`: the CA certificate (PEM path) that signed pullgate's certificate, to reach it over HTTPS. */
  ca?: string;
}

/** The `--workers` argument for `workers` (none for 'default'). */
function workersArgs(workers: number | 'default'): string[] {
  return workers === 'default' ? [] : ['--workers', String(workers)];
}

/** The status of an HTTPS GET that trusts only `ca`. */
async function httpsStatus(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

/** Writes the config and starts pullgate as a child process; resolves once /healthz (or `readyPath`) answers 200. */
export async function startPullgate(
  ws: Workspace,
  name: string,
  config: Omit<PullgateConfigInput, 'listen' | 'storagePath'>,
  options: StartOptions = {},
): Promise<Pullgate> {
  if (!existsSync(PULLGATE_CLI)) {
    throw new Error(`e2e: ${PULLGATE_CLI} is missing: run \`npm run build\` before the e2e tests`);
  }
  const port = await freePort();
  const listen = `${options.listenHost ?? '127.0.0.1'}:${port}`;
  const storagePath = options.storagePath ?? (await ws.mkdir(name, 'data'));
  await ws.mkdir(name);
  const configPath = ws.path(name, 'pullgate.yaml');
  await writeFile(configPath, renderPullgateConfig({ ...config, listen, storagePath }));
  const daemon = startDaemon({
    name: `pullgate (${name})`,
    command: process.execPath,
    // One process unless the caller says otherwise (a later --workers wins): the tests and the bench watch
    // this pid (kill -9, RSS, its log), and `serve` would otherwise run one worker per core.
    args: [...startFlags(), ...nodeArgs(), PULLGATE_CLI, 'serve', '--config', configPath, '--listen', listen, '--storage', storagePath, ...workersArgs(options.workers ?? 1), ...(options.serveArgs ?? [])],
    logPath: ws.path(`${name}.log`),
    cwd: ws.path(name),
  });
  ws.defer(() => daemon.stop());
  const url = `${config.tls === undefined ? 'http' : 'https'}://${listen}`;
  const readyPath = options.readyPath ?? '/healthz';
  const wait = { what: `${daemon.name} ${readyPath}`, intervalMs: options.pollMs, abortIf: () => { daemon.assertRunning(); }, describe: () => daemon.logTail() };
  if (config.tls === undefined) {
    await waitForHttp(`${url}${readyPath}`, 200, wait);
  } else {
    if (options.ca === undefined) throw new Error('e2e: startPullgate with tls needs options.ca (the CA that signed its certificate)');
    const ca = readFileSync(options.ca);
    await waitFor(async () => ((await httpsStatus(`${url}${readyPath}`, ca)) === 200 ? true : undefined), wait);
  }
  return { host: listen, url, daemon, configPath };
}
