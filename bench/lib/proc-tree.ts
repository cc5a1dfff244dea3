// CPU time of a process tree from /proc: a server's primary and every worker it forked (pullgate's default
// `serve`, nginx's master and workers, node:cluster), read the same way for a server of one process.
import { readFile, readdir } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on every Linux the bench runs on). */
const TICKS_PER_SECOND = 100;

/** What the tree walk reads; the real one is /proc, tests pass a fake. */
export interface ProcReader {
  /** The pids that exist now. */
  pids(): Promise<number[]>;
  /** The text of /proc/<pid>/stat, or undefined when the process has gone meanwhile. */
  stat(pid: number): Promise<string | undefined>;
}

/** The fields of /proc/<pid>/stat the walk needs; times in clock ticks. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** Its own user and system time. */
  utime: number;
  stime: number;
  /** User and system time of its children that exited and that it has reaped (wait()ed for). */
  cutime: number;
  cstime: number;
}

/** The CPU time of a tree at one moment, and how many live processes it had. */
export interface TreeCpu {
  seconds: number;
  processes: number;
}

/** Parses /proc/<pid>/stat; throws on text that is not one. */
export function parseStat(text: string): ProcStat {
  // The command name (field 2) may hold spaces and parentheses: the fields after it start after the last ')'.
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const fields = text.slice(close + 2).split(' ');
  // After the name: state (field 3) is fields[0], ppid (4) fields[1], utime..cstime (14..17) fields[11..14].
  const num = (i: number): number => Number(fields[i]);
  const stat = { pid, ppid: num(1), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14) };
  if (close < 0 || Object.values(stat).some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 120)}`);
  return stat;
}

/** The real /proc. */
export const procFs: ProcReader = {
  async pids() {
    return (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  },
  async stat(pid) {
    try {
      return await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
  },
};

/** `root` and every live descendant of it (children, their children …), read once each; throws when `root` has gone. */
export async function processTree(root: number, reader: ProcReader = procFs): Promise<ProcStat[]> {
  const stats = await Promise.all((await reader.pids()).map(async (pid) => reader.stat(pid)));
  const byParent = new Map<number, ProcStat[]>();
  let rootStat: ProcStat | undefined;
  for (const text of stats) {
    if (text === undefined) continue;
    const stat = parseStat(text);
    if (stat.pid === root) rootStat = stat;
    const siblings = byParent.get(stat.ppid) ?? [];
    siblings.push(stat);
    byParent.set(stat.ppid, siblings);
  }
  if (rootStat === undefined) throw new Error(`process ${root} has gone: no CPU time to read`);
  const tree: ProcStat[] = [];
  const seen = new Set<number>();
  const queue = [rootStat];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    if (seen.has(next.pid)) continue;
    seen.add(next.pid);
    tree.push(next);
    queue.push(...(byParent.get(next.pid) ?? []));
  }
  return tree;
}

/**
 * CPU time (user + system) a process and all its descendants have used so far, in seconds. Each live process
 * counts its own time plus its reaped children's (cutime/cstime): a worker that exits is counted by itself while
 * it is in /proc (a zombie keeps its times) and by its parent once reaped, so once either way. Only a process
 * whose parent has gone (re-parented outside the tree) is lost, and one reaped between the reading of its own
 * line and its parent's can count twice or not at all: read it while the workers live. A difference of two
 * readings is the tree's CPU over that span (children reaped before the first reading cancel out).
 */
export async function treeCpuSeconds(root: number, reader: ProcReader = procFs): Promise<TreeCpu> {
  const tree = await processTree(root, reader);
  const ticks = tree.reduce((n, p) => n + p.utime + p.stime + p.cutime + p.cstime, 0);
  return { seconds: ticks / TICKS_PER_SECOND, processes: tree.length };
}
