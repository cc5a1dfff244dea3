import { describe, expect, it } from 'vitest';
import { cgroupCpuLimit, cgroupMemoryWorkers, chooseWorkers, type CoreProbe } from '../../src/cli/worker-count.js';
import type { Config } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

const local: Pick<Config, 'cluster' | 'storage'> = { cluster: undefined, storage: { path: '/data', maxSizeBytes: 1 << 30, s3: undefined } };

function probe(cores: number, cpuMax: string | undefined, memoryMax?: string): CoreProbe {
  return { availableParallelism: () => cores, cpuMax: () => cpuMax, memoryMax: () => memoryMax };
}

describe('serve --workers default', () => {
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
