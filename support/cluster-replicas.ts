import { writeFile } from 'node:fs/promises';
import { freePort } from './ports.js';
import { type Daemon, run, startDaemon } from './proc.js';
import { PULLGATE_CLI, startFlags } from './pullgate.js';
import type { Rgw } from './rgw.js';
import { waitForHttp } from './wait.js';
import type { Workspace } from './workspace.js';

/** The upstream every replica is configured with (one registry key, reached at `url`). */
export interface ReplicaUpstream {
  key: string;
  url: string;
  username: string;
  password: string;
}

/** One `pullgate serve` process of a cluster (or a lone replica over the shared store). */
export interface Replica {
  name: string;
  /** host:port clients pull from. */
  host: string;
  url: string;
  /** Its member id (cluster.self), as rendezvous hashing sees it. */
  id: string;
  configPath: string;
  daemon: Daemon;
}

const q = (s: string): string => JSON.stringify(s);

/** The environment every replica runs with: the S3 keys (the AWS SDK's default chain) and the cluster secret. */
export function replicaEnv(rgw: Rgw | undefined, secret: string | undefined): NodeJS.ProcessEnv {
  return { ...process.env, ...(rgw?.env ?? {}), ...(secret === undefined ? {} : { PULLGATE_CLUSTER_SECRET: secret }) };
}

export interface ReplicaOptions {
  count: number;
  /** The shared store: this RGW's bucket under `prefix`; without it each replica has its local disk only. */
  rgw?: Rgw;
  prefix?: string;
  /** The cluster secret; without it the replicas are independent (no `cluster:` section). */
  secret?: string;
  /** Names the replicas `<name>-0`, `<name>-1` … in the workspace (default `replica`). */
  name?: string;
}

/** The `storage.s3` lines of a replica's config. */
function s3Lines(rgw: Rgw, prefix: string): string[] {
  return ['  s3:', `    endpoint: ${q(rgw.endpoint)}`, `    region: ${q(rgw.region)}`, `    bucket: ${q(rgw.bucket)}`, `    prefix: ${q(prefix)}`, '    forcePathStyle: true'];
}

/**
 * Starts `count` pullgate processes on loopback that share one RGW bucket (under `prefix`) and know each
 * other from a static `cluster.peers` list (each with its own `cluster.self`); resolves once all answer /healthz.
 */
export async function startReplicas(ws: Workspace, upstream: ReplicaUpstream, options: ReplicaOptions): Promise<Replica[]> {
  const clusterPorts = await Promise.all(Array.from({ length: options.count }, () => freePort()));
  const peers = clusterPorts.map((port) => `127.0.0.1:${port}`);
  const env = replicaEnv(options.rgw, options.secret);
  const replicas: Replica[] = [];
  for (const [i, self] of peers.entries()) {
    const name = `${options.name ?? 'replica'}-${i}`;
    const storage = await ws.mkdir(name, 'data');
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    const configPath = ws.path(name, 'pullgate.yaml');
    await writeFile(
      configPath,
      [
        `listen: ${q(listen)}`,
        'storage:',
        `  path: ${q(storage)}`,
        ...(options.rgw === undefined ? [] : s3Lines(options.rgw, options.prefix ?? 'cache/')),
        `defaultRegistry: ${q(upstream.key)}`,
        'registries:',
        `  ${q(upstream.key)}:`,
        `    url: ${q(upstream.url)}`,
        `    auth: { type: basic, username: ${q(upstream.username)}, password: ${q(upstream.password)} }`,
        ...(options.secret === undefined
          ? []
          : ['cluster:', `  listen: ${q(self)}`, `  peers: [${peers.map(q).join(', ')}]`, `  self: ${q(self)}`, '  secret: ${PULLGATE_CLUSTER_SECRET}']),
        '',
      ].join('\n'),
    );
    const daemon = startDaemon({
      name: `pullgate (${name})`,
      command: process.execPath,
      // One process per replica (kill -9 of the owner's pid must take the owner down).
      args: [...startFlags(), PULLGATE_CLI, 'serve', '--config', configPath, '--workers', '1'],
      logPath: ws.path(`${name}.log`),
      cwd: ws.path(name),
      env,
    });
    ws.defer(() => daemon.stop());
    replicas.push({ name, host: listen, url: `http://${listen}`, id: self, configPath, daemon });
  }
  await Promise.all(
    replicas.map((r) =>
      waitForHttp(`${r.url}/healthz`, 200, { what: `${r.daemon.name} /healthz`, abortIf: () => { r.daemon.assertRunning(); }, describe: () => r.daemon.logTail() }),
    ),
  );
  return replicas;
}

/** Runs `pullgate <args>` (the built CLI) with the replicas' environment. */
export function pullgateCli(args: readonly string[], env: NodeJS.ProcessEnv): ReturnType<typeof run> {
  return run(process.execPath, [PULLGATE_CLI, ...args], { env, timeoutMs: 60_000 });
}
