// What part of an idle pullgate's RSS is the runtime's: the memory of a bare node process and of one that has
// only loaded the libraries pullgate loads at start, read the same way as pullgate's (/proc/PID/status).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { procStatus } from './probes.js';

/** The libraries `pullgate serve` loads at start on its embedded config (cloud SDKs load only when a registry needs them). */
export const START_LIBRARIES = ['fastify', 'pino', 'undici', 'better-sqlite3', 'prom-client', 'ajv', 'yaml', 'lru-cache', 'commander', 'tldts'] as const;

/** Resident memory of a process: all of it, the private (anonymous) pages, and the pages of mapped files (the node binary, native modules). */
export interface RssSplit {
  rssKiB: number;
  anonKiB: number;
  fileKiB: number;
}

/** Reads VmRSS, RssAnon and RssFile of `pid` (one read of /proc/PID/status). */
export async function rssSplit(pid: number): Promise<RssSplit> {
  const status = await procStatus(pid, ['VmRSS', 'RssAnon', 'RssFile']);
  return { rssKiB: status.VmRSS, anonKiB: status.RssAnon, fileKiB: status.RssFile };
}

/**
 * The RSS of a node process (same flags as pullgate's) that loads `modules` from `cwd`'s node_modules, says
 * so, and idles: read once it has said so, as pullgate's idle RSS is read once it answers.
 */
export async function runtimeRss(cwd: string, nodeArgs: readonly string[], modules: readonly string[]): Promise<RssSplit> {
  const code = `for (const m of ${JSON.stringify(modules)}) require(m); process.stdout.write('ready\\n'); setInterval(() => {}, 60000);`;
  const child = spawn(process.execPath, [...nodeArgs, '-e', code], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = createInterface({ input: child.stdout });
    const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as [string];
    if (line !== 'ready' || child.pid === undefined) throw new Error(`node with ${modules.join(', ') || 'no modules'} did not start: ${line}`);
    return await rssSplit(child.pid);
  } finally {
    child.kill('SIGKILL');
  }
}
