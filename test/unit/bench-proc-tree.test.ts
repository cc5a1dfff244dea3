import { describe, expect, it } from 'vitest';
import { type ProcReader, parseStat, processTree, treeCpuSeconds } from '../../bench/lib/proc-tree.js';

interface FakeProcess {
  ppid: number;
  name?: string;
  utime: number;
  stime: number;
  cutime?: number;
  cstime?: number;
}

/** A /proc/<pid>/stat line with the given fields (the rest as a real one has them). */
function statLine(pid: number, p: FakeProcess): string {
  const fields = ['S', p.ppid, pid, pid, 0, -1, 4194560, 100, 0, 0, 0, p.utime, p.stime, p.cutime ?? 0, p.cstime ?? 0, 20, 0, 1, 0, 188374, 3133440, 407];
  return `${pid} (${p.name ?? 'node'}) ${fields.join(' ')}\n`;
}

/** A fake /proc: the processes by pid; `vanishing` pids are listed but gone when their stat is read. */
function fakeProc(processes: Record<number, FakeProcess>, vanishing: readonly number[] = []): ProcReader {
  return {
    pids: () => Promise.resolve([...Object.keys(processes).map(Number), ...vanishing]),
    stat: (pid) => {
      const p = processes[pid];
      return Promise.resolve(p === undefined ? undefined : statLine(pid, p));
    },
  };
}

describe('bench process-tree CPU', () => {
  it('reads a stat line whose command name holds spaces and parentheses', () => {
    const line = statLine(42, { ppid: 7, name: 'node) (worker 1', utime: 150, stime: 30, cutime: 5, cstime: 2 });
    expect(parseStat(line)).toEqual({ pid: 42, ppid: 7, utime: 150, stime: 30, cutime: 5, cstime: 2 });
    expect(() => parseStat('garbage')).toThrow(/not a \/proc\/<pid>\/stat line/);
  });

  it('sums the root and every descendant, and nothing outside the tree', async () => {
    const proc = fakeProc({
      1: { ppid: 0, name: 'init', utime: 10_000, stime: 10_000 },
      100: { ppid: 1, name: 'bench', utime: 5_000, stime: 500 },
      // The primary of `serve` and its two workers; a worker's helper child (a grandchild of the root).
      200: { ppid: 100, utime: 40, stime: 10 },
      201: { ppid: 200, utime: 300, stime: 100 },
      202: { ppid: 200, utime: 250, stime: 50 },
      203: { ppid: 202, name: 'helper', utime: 7, stime: 3 },
      // A sibling of the primary (skopeo, started by the bench too): not the server's CPU.
      300: { ppid: 100, name: 'skopeo', utime: 900, stime: 90 },
    });
    const tree = await processTree(200, proc);
    expect(tree.map((p) => p.pid).sort()).toEqual([200, 201, 202, 203]);
    expect(await treeCpuSeconds(200, proc)).toEqual({ seconds: (40 + 10 + 300 + 100 + 250 + 50 + 7 + 3) / 100, processes: 4 });
  });

  it('counts a worker that exited once: by itself until reaped, then in its parent', async () => {
    const before = fakeProc({ 200: { ppid: 1, utime: 40, stime: 10 }, 201: { ppid: 200, utime: 300, stime: 100 } });
    // The worker used 20 more ticks, exited, and the primary reaped it: its 420 ticks are now the primary's cutime/cstime.
    const after = fakeProc({ 200: { ppid: 1, utime: 45, stime: 10, cutime: 310, cstime: 110 } });
    const cpu0 = await treeCpuSeconds(200, before);
    const cpu1 = await treeCpuSeconds(200, after);
    expect(cpu1.seconds - cpu0.seconds).toBeCloseTo((5 + 20) / 100, 10);
    expect([cpu0.processes, cpu1.processes]).toEqual([2, 1]);
  });

  it('skips a process that exits while /proc is read, and fails when the root itself has gone', async () => {
    const proc = fakeProc({ 200: { ppid: 1, utime: 40, stime: 10 }, 201: { ppid: 200, utime: 60, stime: 0 } }, [202]);
    expect(await treeCpuSeconds(200, proc)).toEqual({ seconds: 1.1, processes: 2 });
    await expect(treeCpuSeconds(999, proc)).rejects.toThrow(/process 999 has gone/);
  });

  it('reads the real /proc: this test process', async () => {
    const cpu = await treeCpuSeconds(process.pid);
    expect(cpu.processes).toBeGreaterThanOrEqual(1);
    expect(cpu.seconds).toBeGreaterThan(0);
  });
});
