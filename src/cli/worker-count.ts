import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';

/** Most workers `--workers` accepts. */
const MAX_WORKERS = 256;
/** cgroup v2's CPU bandwidth limit of this process's cgroup (a container's `resources.limits.cpu`). */
const CGROUP_CPU_MAX = '/sys/fs/cgroup/cpu.max';

/** Where the number of usable cores comes from; injected so tests can be a 64-core node with a limit of 2. */
export interface CoreProbe {
  /** CPUs this process may run on (os.availableParallelism(): the affinity mask, not a CPU quota). */
  availableParallelism(): number;
  /** The text of cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"), undefined when there is none. */
  cpuMax(): string | undefined;
}

/** This machine's cores and the cgroup it runs in. */
export const systemCores: CoreProbe = {
  availableParallelism,
  cpuMax: () => {
    try {
      return readFileSync(CGROUP_CPU_MAX, 'utf8');
    } catch {
      return undefined;
    }
  },
};

/** The CPU limit of a cgroup v2 `cpu.max` text, rounded up to whole cores; undefined when unlimited ("max") or unreadable. */
export function cgroupCpuLimit(cpuMax: string | undefined): number | undefined {
  const match = /^\s*(\d+)\s+(\d+)\s*$/.exec(cpuMax ?? '');
  if (match === null) return undefined;
  const quota = Number(match[1]);
  const period = Number(match[2]);
  if (quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** How many processes `serve` runs and why, for the start-up line. */
export interface WorkerChoice {
  workers: number;
  reason: string;
}

/**
 * `serve --workers`: the number given, else one worker per usable core when the storage is the local disk
 * alone and no `cluster:` is configured, else one. Usable cores are the CPUs the process may run on, capped
 * by the cgroup's CPU limit, so a pod limited to 2 CPUs on a 64-core node runs 2 workers, not 64.
 */
export function chooseWorkers(flag: string | undefined, config: Pick<Config, 'cluster' | 'storage'>, probe: CoreProbe = systemCores): WorkerChoice {
  if (flag !== undefined) {
    const workers = Number(flag);
    if (!/^\d+$/.test(flag.trim()) || !Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
      throw new ConfigError(`--workers: must be an integer from 1 to ${MAX_WORKERS}, not "${flag}"`);
    }
    return { workers, reason: 'forced by --workers' };
  }
  if (config.cluster !== undefined) return { workers: 1, reason: 'one process: cluster: is configured (serve --workers cannot be combined with it yet)' };
  if (config.storage.s3 !== undefined) return { workers: 1, reason: 'one process: storage is not local alone (storage.s3)' };
  const cores = Math.max(1, probe.availableParallelism());
  const limit = cgroupCpuLimit(probe.cpuMax());
  if (limit !== undefined && limit < cores) {
    return { workers: Math.min(limit, MAX_WORKERS), reason: `one per usable core: cgroup CPU limit of ${limit} (${CGROUP_CPU_MAX}) on ${cores} cores` };
  }
  return { workers: Math.min(cores, MAX_WORKERS), reason: `one per usable core: ${cores} cores` };
}
