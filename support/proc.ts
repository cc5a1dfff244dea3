import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** A long-running peer (registry, containerd, pullgate) whose stdout and stderr go to `logPath`. */
export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** The exit code or signal once it has exited, else undefined. */
  exited(): string | undefined;
  /** Throws (with the log tail) if the process has exited. */
  assertRunning(): void;
  /** The last `lines` lines of its log. */
  logTail(lines?: number): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once it is gone. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

const live = new Set<ChildProcess>();

// Safety net: whatever happens to the test run, no peer outlives it.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function tail(path: string, lines: number): string {
  try {
    const all = readFileSync(path, 'utf8').split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a daemon with its output captured to a log file, tracked so that teardown always kills it. */
export function startDaemon(opts: DaemonOptions): Daemon {
  const fd = openSync(opts.logPath, 'a');
  const child = spawn(opts.command, [...opts.args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  live.add(child);
  let exitDescription: string | undefined;
  let spawnError: Error | undefined;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitDescription = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
      live.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exitDescription = `spawn error: ${err.message}`;
      live.delete(child);
      resolve();
    });
  });

  const daemon: Daemon = {
    name: opts.name,
    child,
    logPath: opts.logPath,
    exited: () => exitDescription,
    logTail: (lines = 40) => tail(opts.logPath, lines),
    assertRunning() {
      if (exitDescription !== undefined) {
        throw new Error(
          `${opts.name} exited (${exitDescription}); log ${opts.logPath}:\n${tail(opts.logPath, 40)}`,
          { cause: spawnError },
        );
      }
    },
    async stop() {
      if (exitDescription !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
  return daemon;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a one-shot command to completion (killed after a deadline) and returns its exit code and output. */
export async function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timeoutMs = opts.timeoutMs ?? 90_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`${command}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: code ?? (timedOut ? 124 : 128),
        stdout: Buffer.concat(out),
        stderr: timedOut ? `${stderr}\n(killed after ${timeoutMs} ms)` : signal === null ? stderr : `${stderr}\n(${signal})`,
      });
    });
  });
}

/** Like `run`, but throws with the command line and its stderr unless it exits 0. */
export async function runOk(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    throw new Error(
      `\`${command} ${args.join(' ')}\` exited ${result.code}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout.toString('utf8').slice(-4000)}`,
    );
  }
  return result;
}
