import type { Daemon } from './proc.js';

/** Log tails of the given peers, to append to an assertion message so a failure says what each side saw. */
export function logsOf(...daemons: readonly Daemon[]): string {
  return daemons.map((d) => `--- ${d.name} (${d.logPath}) ---\n${d.logTail(30)}`).join('\n');
}
