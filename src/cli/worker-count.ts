import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/config.js';
import { ConfigError } from '../core/errors.js';

/** Most workers `--workers` accepts. */
const MAX_WORKERS = 256;
/** cgroup v2's CPU bandwidth limit of this process's cgroup (a container's `resources.limits.cpu`). */
const CGROUP_CPU_MAX = '/sys/fs/cgroup/cpu.max';
/** cgroup v2's memory limit of this process's cgroup (a container's `resources.limits.memory`). */
const CGROUP_MEMORY_MAX = '/sys/fs/cgroup/memory.max';
/** The same limits on a cgroup v1 host (older kernels and distributions): CFS quota and period, in µs. */
const CGROUP_V1_CPU_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const CGROUP_V1_CPU_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';
const CGROUP_V1_MEMORY_LIMIT = '/sys/fs/cgroup/memory/memory.limit_in_bytes';
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
  /** cgroup v1: the texts of `cpu.cfs_quota_us` ("-1" when unlimited) and `cpu.cfs_period_us`, undefined when absent. */
  cfsQuota(): string | undefined;
  cfsPeriod(): string | undefined;
  /** cgroup v1: the text of `memory.limit_in_bytes` (a huge number when unlimited), undefined when absent. */
  memoryLimitV1(): string | undefined;
}

/** This machine's cores and the cgroup it runs in. */
export const systemCores: CoreProbe = {
  availableParallelism,
  cpuMax: () => readOptional(CGROUP_CPU_MAX),
  memoryMax: () => readOptional(CGROUP_MEMORY_MAX),
  cfsQuota: () => readOptional(CGROUP_V1_CPU_QUOTA),
  cfsPeriod: () => readOptional(CGROUP_V1_CPU_PERIOD),
  memoryLimitV1: () => readOptional(CGROUP_V1_MEMORY_LIMIT),
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

/** The CPU limit of cgroup v1's CFS quota and period texts, rounded up to whole cores; undefined when unlimited (-1) or unreadable. */
export function cgroupV1CpuLimit(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined) return undefined;
  return cgroupCpuLimit(`${quota.trim()} ${period.trim()}`);
}

/**
 * The workers a cgroup `memory.max` (v2) or `memory.limit_in_bytes` (v1) text leaves room for (at least 1);
 * undefined when unlimited ("max"; v1's near-2^63 "unlimited" leaves room for more workers than any host has) or unreadable.
 */
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
 * by the cgroup's CPU limit (v2, else v1), so a pod limited to 2 CPUs on a 64-core node runs 2 workers, not 64; and by its
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
  // cgroup v2 first; a v1 host has no cpu.max and memory.max, and its limits are in the v1 controllers' files.
  const v2Cpu = probe.cpuMax();
  const cpu = v2Cpu !== undefined ? { limit: cgroupCpuLimit(v2Cpu), file: CGROUP_CPU_MAX } : { limit: cgroupV1CpuLimit(probe.cfsQuota(), probe.cfsPeriod()), file: CGROUP_V1_CPU_QUOTA };
  let choice: WorkerChoice = { workers: Math.min(cores, MAX_WORKERS), reason: `one per usable core: ${cores} cores` };
  if (cpu.limit !== undefined && cpu.limit < cores) {
    choice = { workers: Math.min(cpu.limit, MAX_WORKERS), reason: `one per usable core: cgroup CPU limit of ${cpu.limit} (${cpu.file}) on ${cores} cores` };
  }
  // A pod with a memory limit and no CPU limit (common) must not start one worker per node core.
  const v2Memory = probe.memoryMax();
  const memory = v2Memory !== undefined ? { room: cgroupMemoryWorkers(v2Memory), file: CGROUP_MEMORY_MAX } : { room: cgroupMemoryWorkers(probe.memoryLimitV1()), file: CGROUP_V1_MEMORY_LIMIT };
  if (memory.room !== undefined && memory.room < choice.workers) {
    const mib = Math.round(WORKER_MEMORY_BYTES / 2 ** 20);
    choice = { workers: memory.room, reason: `${choice.reason}, capped to ${memory.room} by the cgroup memory limit (${memory.file}, ${mib} MiB per worker)` };
  }
  return choice;
}
