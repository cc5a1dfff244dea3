import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { onOverlayfs, unmountUnder } from './mounts.js';
import { type Daemon, type RunOptions, type RunResult, run, runOk, startDaemon } from '../../../support/proc.js';
import { waitFor } from '../../../support/wait.js';
import type { Workspace } from '../../../support/workspace.js';

/** Debian's Docker Engine (package docker.io) and its matching CLI, by absolute path: another `docker` on PATH may be a different client. */
export const DOCKERD = '/usr/sbin/dockerd';
export const DOCKER = '/usr/bin/docker';

/** dockerd writes its trust key here whatever --data-root says; removed afterwards if a test created it. */
const TRUST_KEY = '/etc/docker/key.json';

/** A private Docker Engine (own data root, exec root, pidfile and socket under the workspace) and a CLI bound to it. */
export interface Dockerd {
  daemon: Daemon;
  socket: string;
  /** Runs `/usr/bin/docker -H unix://<socket> ...args` with its own client config directory. */
  docker(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Like docker, but throws with stderr on a non-zero exit. */
  dockerOk(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/**
 * The data root, on a filesystem overlay2 can use: the workspace itself, or a tmpfs mounted over it when the
 * workspace is on overlayfs (inside a container). Throws, saying why, when neither works.
 */
async function prepareDataRoot(ws: Workspace, dir: string): Promise<string> {
  const dataRoot = join(dir, 'data');
  await mkdir(dataRoot, { recursive: true });
  if (!(await onOverlayfs(dataRoot))) return dataRoot;
  process.stderr.write(`e2e: ${dataRoot} is on overlayfs, where overlay2 cannot stack; mounting a tmpfs there for dockerd\n`);
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=0710', 'tmpfs', dataRoot]);
  if (mounted.code !== 0) {
    throw new Error(
      `e2e: dockerd cannot run with --storage-driver=overlay2 here: ${dataRoot} is on overlayfs and mounting a tmpfs ` +
        `over it failed (${mounted.stderr.trim()}). Run the e2e tests on a host or VM (ext4/xfs /tmp), or as root with CAP_SYS_ADMIN.`,
    );
  }
  ws.defer(async () => {
    await run('umount', ['-l', dataRoot]);
  });
  return dataRoot;
}

function clientEnv(configDir: string): NodeJS.ProcessEnv {
  const ignored = new Set(['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !ignored.has(name)));
  return { ...env, DOCKER_CONFIG: configDir };
}

/**
 * Starts dockerd with the given daemon.json (no iptables, no bridge, overlay2, everything else under
 * `<workspace>/<name>`); resolves once the CLI reaches it and it reports overlay2. Teardown stops it, unmounts
 * what it left mounted and removes /etc/docker/key.json if this run created it. `extraEnv` is added to its
 * environment (e.g. HTTPS_PROXY).
 */
export async function startDockerd(ws: Workspace, daemonJson: string, name = 'dockerd', extraEnv: NodeJS.ProcessEnv = {}): Promise<Dockerd> {
  for (const tool of [DOCKERD, DOCKER]) {
    if (!existsSync(tool)) {
      throw new Error(`e2e: ${tool} is missing: run \`bash scripts/install-test-deps.sh\` (Debian package docker.io)`);
    }
  }
  const dir = await ws.mkdir(name);
  const trustKeyExisted = existsSync(TRUST_KEY);
  ws.defer(async () => {
    const left = await unmountUnder(dir);
    if (left.length > 0) process.stderr.write(`e2e: unmounted what ${name} left mounted: ${left.join(', ')}\n`);
    if (!trustKeyExisted) await rm(TRUST_KEY, { force: true });
  });
  const dataRoot = await prepareDataRoot(ws, dir);
  const socket = join(dir, 'docker.sock');
  const daemon = startDaemon({
    name,
    command: DOCKERD,
    args: [
      '--config-file', daemonJson,
      '--iptables=false', '--ip-masq=false', '--bridge=none', '--storage-driver=overlay2',
      '--data-root', dataRoot,
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${socket}`,
    ],
    logPath: ws.path(`${name}.log`),
    env: { ...process.env, ...extraEnv },
  });
  ws.defer(() => daemon.stop());

  const env = clientEnv(await ws.mkdir(name, 'client-config'));
  const docker = (args: readonly string[], opts: RunOptions = {}): Promise<RunResult> =>
    run(DOCKER, ['-H', `unix://${socket}`, ...args], { env, ...opts });
  const dockerOk = (args: readonly string[], opts: RunOptions = {}): Promise<RunResult> =>
    runOk(DOCKER, ['-H', `unix://${socket}`, ...args], { env, ...opts });

  await waitFor(async () => ((await docker(['version'], { timeoutMs: 10_000 })).code === 0 ? true : undefined), {
    what: `${name} to answer \`docker version\` on ${socket}`,
    timeoutMs: 60_000,
    intervalMs: 200,
    abortIf: () => {
      try {
        daemon.assertRunning();
      } catch (err) {
        const overlay = /overlay2?\b.*(not supported|invalid argument)|driver not supported/i.test(daemon.logTail(80));
        if (!overlay) throw err;
        throw new Error(
          `e2e: dockerd cannot use --storage-driver=overlay2 in this environment: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    },
    describe: () => daemon.logTail(),
  });
  const driver = (await dockerOk(['info', '--format', '{{.Driver}}'])).stdout.toString('utf8').trim();
  if (driver !== 'overlay2') throw new Error(`e2e: dockerd runs with storage driver "${driver}", not overlay2\n${daemon.logTail()}`);
  return { daemon, socket, docker, dockerOk };
}
