import { writeFile } from 'node:fs/promises';
import { freePort } from '../../../support/ports.js';
import { type Daemon, run, startDaemon } from '../../../support/proc.js';
import { PULLGATE_CLI, startFlags } from '../../../support/pullgate.js';
import type { Rgw } from '../../../support/rgw.js';
import { waitForHttp } from '../../../support/wait.js';
import type { Workspace } from '../../../support/workspace.js';

/** The upstream every replica is configured with (one registry key, reached at `url`). */
export interface ReplicaUpstream {
  key: string;
  url: string;
  username: string;
  password: string;
}

/** One `pullgate serve` process of the cluster. */
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
export function replicaEnv(rgw: Rgw, secret: string): NodeJS.ProcessEnv {
  return { ...process.env, ...rgw.env, PULLGATE_CLUSTER_SECRET: secret };
}

/**
 * Starts `count` pullgate processes on loopback that share one RGW bucket (under `prefix`) and know each
 * other from a static `cluster.peers` list (each with its own `cluster.self`); resolves once all answer /healthz.
 */
export async function startReplicas(ws: Workspace, rgw: Rgw, upstream: ReplicaUpstream, options: { count: number; prefix: string; secret: string }): Promise<Replica[]> {
  const clusterPorts = await Promise.all(Array.from({ length: options.count }, () => freePort()));
  const peers = clusterPorts.map((port) => `127.0.0.1:${port}`);
  const env = replicaEnv(rgw, options.secret);
  const replicas: Replica[] = [];
  for (const [i, self] of peers.entries()) {
    const name = `replica-${i}`;
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
        '  s3:',
        `    endpoint: ${q(rgw.endpoint)}`,
        `    region: ${q(rgw.region)}`,
        `    bucket: ${q(rgw.bucket)}`,
        `    prefix: ${q(options.prefix)}`,
        '    forcePathStyle: true',
        `defaultRegistry: ${q(upstream.key)}`,
        'registries:',
        `  ${q(upstream.key)}:`,
        `    url: ${q(upstream.url)}`,
        `    auth: { type: basic, username: ${q(upstream.username)}, password: ${q(upstream.password)} }`,
        'cluster:',
        `  listen: ${q(self)}`,
        `  peers: [${peers.map(q).join(', ')}]`,
        `  self: ${q(self)}`,
        '  secret: ${PULLGATE_CLUSTER_SECRET}',
        '',
      ].join('\n'),
    );
    const daemon = startDaemon({
      name: `pullgate (${name})`,
      command: process.execPath,
      args: [...startFlags(), PULLGATE_CLI, 'serve', '--config', configPath],
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
