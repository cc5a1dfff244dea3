import { describe, expect, it } from 'vitest';
import { cgroupCpuLimit, cgroupMemoryWorkers, cgroupV1CpuLimit, chooseWorkers, type CoreProbe } from '../../src/cli/worker-count.js';
import type { Config } from '../../src/config/config.js';
import { ConfigError } from '../../src/core/errors.js';

const local: Pick<Config, 'cluster' | 'storage'> = { cluster: undefined, storage: { path: '/data', maxSizeBytes: 1 << 30, s3: undefined } };

/** A cgroup v2 host (or none): `cpu.max` and `memory.max` as given, no v1 files. */
function probe(cores: number, cpuMax: string | undefined, memoryMax?: string): CoreProbe {
  return { availableParallelism: () => cores, cpuMax: () => cpuMax, memoryMax: () => memoryMax, cfsQuota: () => undefined, cfsPeriod: () => undefined, memoryLimitV1: () => undefined };
}

/** A cgroup v1 host: no v2 files, the CFS quota and period and the v1 memory limit as given. */
function probeV1(cores: number, quota: string, period: string, memoryLimit: string): CoreProbe {
  return { availableParallelism: () => cores, cpuMax: () => undefined, memoryMax: () => undefined, cfsQuota: () => quota, cfsPeriod: () => period, memoryLimitV1: () => memoryLimit };
}

/** What the kernel writes in memory.limit_in_bytes for a cgroup v1 without a limit. */
const V1_UNLIMITED = '9223372036854771712\n';

describe('serve --workers default', () => {
  it('is capped by the cgroup v1 CPU quota on a v1 host: 150000/100000 µs on a 64-core node gets 2 workers', () => {
    const choice = chooseWorkers(undefined, local, probeV1(64, '150000\n', '100000\n', V1_UNLIMITED));
    expect(choice).toEqual({ workers: 2, reason: 'one per usable core: cgroup CPU limit of 2 (/sys/fs/cgroup/cpu/cpu.cfs_quota_us) on 64 cores' });
  });

  it('takes a v1 quota of -1 and v1\'s near-2^63 memory limit as no limit', () => {
    expect(chooseWorkers(undefined, local, probeV1(8, '-1\n', '100000\n', V1_UNLIMITED))).toEqual({ workers: 8, reason: 'one per usable core: 8 cores' });
    expect(cgroupV1CpuLimit('-1', '100000')).toBeUndefined();
    expect(cgroupV1CpuLimit(undefined, '100000')).toBeUndefined();
    expect(cgroupV1CpuLimit('250000', '100000')).toBe(3);
  });

  it('is capped by the cgroup v1 memory limit: 512 MiB without a CPU quota on a 64-core node gets 2 workers', () => {
    const choice = chooseWorkers(undefined, local, probeV1(64, '-1', '100000', String(512 * 2 ** 20)));
    expect(choice).toEqual({
      workers: 2,
      reason: 'one per usable core: 64 cores, capped to 2 by the cgroup memory limit (/sys/fs/cgroup/memory/memory.limit_in_bytes, 192 MiB per worker)',
    });
  });

  it('reads cgroup v2 when its files are there, whatever v1 files say', () => {
    const both: CoreProbe = { ...probeV1(64, '100000', '100000', String(256 * 2 ** 20)), cpuMax: () => 'max 100000', memoryMax: () => 'max' };
    expect(chooseWorkers(undefined, local, both)).toEqual({ workers: 64, reason: 'one per usable core: 64 cores' });
  });

  it('is one worker per core with local storage and no cgroup limit', () => {
    expect(chooseWorkers(undefined, local, probe(8, undefined))).toEqual({ workers: 8, reason: 'one per usable core: 8 cores' });
    expect(chooseWorkers(undefined, local, probe(8, 'max 100000\n'))).toEqual({ workers: 8, reason: 'one per usable core: 8 cores' });
  });

  it('is capped by the cgroup v2 CPU limit: a pod limited to 1.5 CPUs on a 64-core node gets 2 workers', () => {
    const choice = chooseWorkers(undefined, local, probe(64, '150000 100000\n'));
    expect(choice.workers).toBe(2);
    expect(choice.reason).toBe('one per usable core: cgroup CPU limit of 2 (/sys/fs/cgroup/cpu.max) on 64 cores');
    // A limit above the cores changes nothing; one below a core is one process (no primary).
    expect(chooseWorkers(undefined, local, probe(4, '800000 100000')).workers).toBe(4);
    expect(chooseWorkers(undefined, local, probe(4, '50000 100000')).workers).toBe(1);
  });

  it('is capped by the cgroup v2 memory limit: a pod limited to 512 MiB without a CPU limit on a 64-core node gets 2 workers', () => {
    const choice = chooseWorkers(undefined, local, probe(64, 'max 100000', String(512 * 2 ** 20)));
    expect(choice).toEqual({ workers: 2, reason: 'one per usable core: 64 cores, capped to 2 by the cgroup memory limit (/sys/fs/cgroup/memory.max, 192 MiB per worker)' });
    // Both limits: the smaller wins; a limit with room for more workers than cores changes nothing.
    expect(chooseWorkers(undefined, local, probe(64, '400000 100000', String(512 * 2 ** 20))).workers).toBe(2);
    expect(chooseWorkers(undefined, local, probe(4, undefined, String(8 * 2 ** 30))).workers).toBe(4);
    expect(chooseWorkers(undefined, local, probe(4, undefined, 'max\n')).workers).toBe(4);
    expect(cgroupMemoryWorkers(String(100 * 2 ** 20))).toBe(1);
    expect(cgroupMemoryWorkers('garbage')).toBeUndefined();
  });

  it('is one process with a cluster: block or a shared store, and what --workers says when given', () => {
    const cluster = { ...local, cluster: { listen: { host: '127.0.0.1', port: 5001 }, peers: [], secret: 's'.repeat(16), self: undefined } } as unknown as Pick<Config, 'cluster' | 'storage'>;
    expect(chooseWorkers(undefined, cluster, probe(8, undefined))).toMatchObject({ workers: 1, reason: expect.stringContaining('cluster:') as unknown });
    const s3 = { ...local, storage: { ...local.storage, s3: {} } } as unknown as Pick<Config, 'cluster' | 'storage'>;
    expect(chooseWorkers(undefined, s3, probe(8, undefined))).toMatchObject({ workers: 1, reason: expect.stringContaining('storage.s3') as unknown });
    expect(chooseWorkers('1', local, probe(8, undefined))).toEqual({ workers: 1, reason: 'forced by --workers' });
    expect(chooseWorkers('3', s3, probe(1, undefined))).toEqual({ workers: 3, reason: 'forced by --workers' });
    for (const bad of ['0', '-1', '1.5', 'two', '257', '']) expect(() => chooseWorkers(bad, local, probe(8, undefined))).toThrow(ConfigError);
  });

  it('reads cpu.max as quota over period, rounded up; "max" or anything else is no limit', () => {
    expect(cgroupCpuLimit('200000 100000')).toBe(2);
    expect(cgroupCpuLimit('100001 100000')).toBe(2);
    expect(cgroupCpuLimit('10000 100000')).toBe(1);
    expect(cgroupCpuLimit('max 100000')).toBeUndefined();
    expect(cgroupCpuLimit(undefined)).toBeUndefined();
    expect(cgroupCpuLimit('garbage')).toBeUndefined();
  });
});
