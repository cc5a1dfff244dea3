import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';

/** Most workers `--workers` accepts. */
const MAX_WORKERS = 256;
/** cgroup v2's CPU bandwidth limit of this process's cgroup (a container's `resources.limits.cpu`). */
const CGROUP_CPU_MAX = '/sys/fs/cgroup/cpu.max';
/** cgroup v2's memory limit of this process's cgroup (a container's `resources.limits.memory`). */
const CGROUP_MEMORY_MAX = '/sys/fs/cgroup/memory.max';
/**
 * Memory one worker is given room for when a memory limit caps the default: its peak under 20 clients
 * streaming 200 MiB each is about 145 MiB (bench `rss`), plus the primary's share and headroom.
 */
const WORKER_MEMORY_BYTES = 192 * 1024 * 1024;

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Where the number of usable cores comes from; injected so tests can be a 64-core node with a limit of 2. */
export interface CoreProbe {
  /** CPUs this process may run on (os.availableParallelism(): the affinity mask, not a CPU quota). */
  availableParallelism(): number;
  /** The text of cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"), undefined when there is none. */
  cpuMax(): string | undefined;
  /** The text of cgroup v2 `memory.max` (bytes or "max"), undefined when there is none. */
  memoryMax(): string | undefined;
}

/** This machine's cores and the cgroup it runs in. */
export const systemCores: CoreProbe = {
  availableParallelism,
  cpuMax: () => readOptional(CGROUP_CPU_MAX),
  memoryMax: () => readOptional(CGROUP_MEMORY_MAX),
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

/** The workers a cgroup v2 `memory.max` text leaves room for (at least 1); undefined when unlimited ("max") or unreadable. */
export function cgroupMemoryWorkers(memoryMax: string | undefined): number | undefined {
  const match = /^\s*(\d+)\s*$/.exec(memoryMax ?? '');
  if (match === null) return undefined;
  return Math.max(1, Math.floor(Number(match[1]) / WORKER_MEMORY_BYTES));
}

/** How many processes `serve` runs and why, for the start-up line. */
export interface WorkerChoice {
  workers: number;
  reason: string;
}

/**
 * `serve --workers`: the number given, else one worker per usable core when the storage is the local disk
 * alone and no `cluster:` is configured, else one. Usable cores are the CPUs the process may run on, capped
 * by the cgroup's CPU limit, so a pod limited to 2 CPUs on a 64-core node runs 2 workers, not 64; and by its
 * memory limit, at 192 MiB per worker, so a pod limited to 512 MiB without a CPU limit runs 2.
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
  let choice: WorkerChoice = { workers: Math.min(cores, MAX_WORKERS), reason: `one per usable core: ${cores} cores` };
  if (limit !== undefined && limit < cores) {
    choice = { workers: Math.min(limit, MAX_WORKERS), reason: `one per usable core: cgroup CPU limit of ${limit} (${CGROUP_CPU_MAX}) on ${cores} cores` };
  }
  // A pod with a memory limit and no CPU limit (common) must not start one worker per node core.
  const room = cgroupMemoryWorkers(probe.memoryMax());
  if (room !== undefined && room < choice.workers) {
    const mib = Math.round(WORKER_MEMORY_BYTES / 2 ** 20);
    choice = { workers: room, reason: `${choice.reason}, capped to ${room} by the cgroup memory limit (${CGROUP_MEMORY_MAX}, ${mib} MiB per worker)` };
  }
  return choice;
}
