import path from 'node:path';
import { run } from '../../support/proc.js';
import { REPO_ROOT } from '../../support/pullgate.js';

/** What a CLI run printed and how it ended. */
export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `pullgate ARGS` from source (tsx) in the repository, with `env` as its whole environment (tests pass a
 * clean one: no docker config, no PULLGATE_*), as a user runs the built CLI.
 */
export async function runCliFromSource(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  const result = await run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli.ts'), ...args], { cwd: REPO_ROOT, env });
  return { status: result.code, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
}
