import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unmountUnder } from './mounts.js';
import { type RunOptions, type RunResult, run, runOk } from '../../../support/proc.js';
import type { Workspace } from '../../../support/workspace.js';

/** podman (rootful, no daemon) with its own storage, run state and config files under the workspace. */
export interface Podman {
  /** Runs `podman <isolation flags> ...args`. */
  podman(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Like podman, but throws with stderr on a non-zero exit. */
  podmanOk(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/**
 * A podman that reads `registriesConf` as its main registries.conf (CONTAINERS_REGISTRIES_CONF; the system
 * drop-ins in /etc/containers/registries.conf.d still load after it) and keeps images and containers in vfs
 * storage under `<workspace>/<name>`; teardown unmounts whatever a container left mounted there.
 */
export async function isolatedPodman(ws: Workspace, registriesConf: string, name = 'podman'): Promise<Podman> {
  const dir = await ws.mkdir(name);
  ws.defer(async () => {
    await unmountUnder(dir);
  });
  const root = join(dir, 'root');
  const runroot = join(dir, 'run');
  const storageConf = join(dir, 'storage.conf');
  await writeFile(storageConf, `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(root)}\nrunroot = ${JSON.stringify(runroot)}\n`);
  const containersConf = join(dir, 'containers.conf');
  // Rootful podman raises a container's nofile/nproc limits to 1048576/4194304, which needs CAP_SYS_RESOURCE (sandboxes
  // and CI containers often drop it: runc then fails "error setting rlimit type 7"); 1024 is below any hard limit.
  await writeFile(
    containersConf,
    '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' +
      '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  const authFile = join(dir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_CONF: containersConf,
    // No login from the host's auth files: podman talks to pullgate, which needs none.
    REGISTRY_AUTH_FILE: authFile,
  };
  const flags = [
    '--root', root, '--runroot', runroot, '--tmpdir', join(dir, 'tmp'), '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
  ];
  return {
    podman: (args, opts = {}) => run('podman', [...flags, ...args], { env, ...opts }),
    podmanOk: (args, opts = {}) => runOk('podman', [...flags, ...args], { env, ...opts }),
  };
}
