import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/**
 * The V8 settings pullgate runs with, in one place. `--max-semi-space-size=2`: pullgate's live heap is
 * small and a 2 MiB young generation keeps a pull's short-lived buffers from piling up (README, Memory).
 * It must be on node's command line (or NODE_OPTIONS): v8.setFlagsFromString after start leaves the young
 * generation at its default size (measured on Node 20: new_space 16 MiB either way, 4 MiB with the flag).
 * The Dockerfile and `npm start` repeat it; a unit test keeps them equal to this list.
 */
export const V8_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** The flag's name, without its value (`--max-semi-space-size`). */
function flagName(flag: string): string {
  return flag.split('=')[0] ?? flag;
}

/** The V8_FLAGS this process was started without (neither in `execArgv` nor in NODE_OPTIONS). */
export function missingV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map(flagName);
  return V8_FLAGS.filter((flag) => !given.includes(flagName(flag)));
}

/** The exec arguments of a worker of `serve --workers`: the primary's own, plus any V8_FLAGS it lacks. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return [...execArgv, ...missingV8Flags(execArgv, nodeOptions)];
}

/**
 * Says once, at start, what the runtime does not give pullgate: V8 flags missing from the command line
 * (`node dist/cli.js serve` without them), and the minor-collection trick of cache/young-sweep.ts (a gc
 * extension taken for a moment) when the runtime refuses it: fills then go on without it, logged and
 * counted in pullgate_runtime_trick_refused_total{trick="minor-collection"}.
 */
export function reportRuntime(logger: Logger, metrics: Metrics, runtime: { execArgv: readonly string[]; nodeOptions: string | undefined; minorCollection: () => (() => void) | undefined }): void {
  const missing = missingV8Flags(runtime.execArgv, runtime.nodeOptions);
  if (missing.length > 0) {
    logger.warn({ missing }, `running without the V8 settings pullgate expects: start it as node ${missing.join(' ')} dist/cli.js serve (as npm start and the image do); more CPU per pull without them`);
  }
  if (runtime.minorCollection() === undefined) {
    metrics.runtimeTrickRefused.labels({ trick: 'minor-collection' }).inc();
    logger.warn({ trick: 'minor-collection' }, 'the runtime refuses --expose-gc at run time: fills go on without minor collections (more CPU per pull)');
  }
}

/** This process's runtime, for reportRuntime. */
export function processRuntime(): { execArgv: readonly string[]; nodeOptions: string | undefined; minorCollection: () => (() => void) | undefined } {
  return { execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS, minorCollection };
}

/** V8's collector as the gc extension exposes it (`type: 'minor'` is a scavenge of the young generation only). */
type Collect = (options: { type: 'minor' | 'major' }) => void;

function isCollect(value: unknown): value is Collect {
  return typeof value === 'function';
}

/**
 * V8's minor collection, taken from a fresh context with the gc extension switched on for that moment
 * only (the main context never gets a global `gc`); undefined where the runtime refuses.
 */
export function minorCollection(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return isCollect(gc) ? () => gc({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
