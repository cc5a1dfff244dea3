// The bench's knobs, read once from the environment: how long, how often, how big, and which part of the table.
import { type LinkShape, parseLinkShapes } from './shaped-link.js';

const MiB = 1024 * 1024;

/** Sizes of the images and indexes the bench builds; BENCH_SMALL=1 shrinks all of them for a smoke run. */
export interface BenchSizes {
  /** The layer of bench/small: the warm blob and the fan-out blob. */
  blobBytes: number;
  /** The layer of bench/big: the RSS run. */
  bigBlobBytes: number;
  /** The layers of bench/multi (after its base layer): the cold pulls. */
  multiLayerBytes: readonly number[];
  /** Blob rows of the synthetic indexes of the growth measure. */
  growthRows: readonly number[];
}

/** Everything the driver and the measures read from the environment. */
export interface BenchConfig {
  /** BENCH_ONLY as given (names of measures, measure groups or peers); undefined runs the whole table. */
  only: readonly string[] | undefined;
  /** BENCH_REPEAT: runs of each cheap (wrk, start-up) figure; the table shows the median and the min–max. */
  repeat: number;
  /** BENCH_COLD_REPS: cold pulls per peer and link. */
  coldReps: number;
  /** BENCH_WRK_SECONDS: length of one wrk run. */
  wrkSeconds: number;
  deadlineMs: number;
  links: readonly LinkShape[];
  /** Concurrent clients of the fan-out and RSS runs. */
  clients: number;
  small: boolean;
  sizes: BenchSizes;
}

function envNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(text)}`);
  return v;
}

function envList(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((p) => p.trim()).filter((p) => p !== '');
}

/** Reads the bench's environment (documented in bench/run.sh). */
export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const small = env.BENCH_SMALL === '1';
  const growth = envList(env, 'BENCH_GROWTH_ROWS')?.map((n) => {
    const v = Number(n);
    if (!Number.isInteger(v) || v < 10) throw new Error(`BENCH_GROWTH_ROWS must list row counts ≥ 10, not ${JSON.stringify(n)}`);
    return v;
  });
  return {
    only: envList(env, 'BENCH_ONLY'),
    repeat: envNumber(env, 'BENCH_REPEAT', small ? 2 : 3),
    coldReps: envNumber(env, 'BENCH_COLD_REPS', small ? 1 : 3),
    wrkSeconds: envNumber(env, 'BENCH_WRK_SECONDS', small ? 1 : 4),
    deadlineMs: envNumber(env, 'BENCH_DEADLINE_SECONDS', 1500) * 1000,
    /**
     * WAN-like links for the cold pulls that follow the loopback ones (BENCH_LINKS="MBIT,RTT_MS;..."): a
     * 250 Mbit/s share of an uplink 40 ms from the registry, as a CI runner or a node pulling from a public
     * registry sees it, and a 1 Gbit/s link 10 ms away, where a 2-core machine's CPU starts to show.
     */
    links: parseLinkShapes(env.BENCH_LINKS, small ? [{ mbitPerSecond: 250, rttMs: 40 }] : [
      { mbitPerSecond: 250, rttMs: 40 },
      { mbitPerSecond: 1000, rttMs: 10 },
    ]),
    clients: 20,
    small,
    sizes: small
      ? { blobBytes: 2 * MiB, bigBlobBytes: 8 * MiB, multiLayerBytes: [MiB, MiB, MiB, MiB, MiB], growthRows: growth ?? [1_000, 10_000] }
      : {
          blobBytes: 20 * MiB,
          bigBlobBytes: 200 * MiB,
          multiLayerBytes: [10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB],
          growthRows: growth ?? [10_000, 100_000, 1_000_000],
        },
  };
}
