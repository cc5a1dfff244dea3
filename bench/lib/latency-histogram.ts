// wrk's whole latency distribution, not just the four percentiles it prints: a Lua done() hook writes the
// count of every microsecond value it recorded, so the distributions of several runs can be added and a
// percentile read over all of them (e.g. every request made while one long eviction pass ran).

/** Appended to a wrk script: prints "HIST <microseconds> <count>" for each latency wrk recorded. */
export const HISTOGRAM_DONE_LUA = [
  'done = function(summary, latency, requests)',
  // wrk 4: #latency is the number of distinct values recorded, latency(i) the i-th of them and its count.
  '  for i = 1, #latency do',
  '    local us, n = latency(i)',
  '    io.write(string.format("HIST %d %d\\n", us, n))',
  '  end',
  'end',
  '',
].join('\n');

/** Request count per latency in microseconds. */
export type LatencyHistogram = Map<number, number>;

/** The histogram a script with HISTOGRAM_DONE_LUA printed into wrk's output; throws when it printed none. */
export function parseHistogram(raw: string): LatencyHistogram {
  const histogram: LatencyHistogram = new Map();
  for (const m of raw.matchAll(/^HIST (\d+) (\d+)$/gm)) histogram.set(Number(m[1]), (histogram.get(Number(m[1])) ?? 0) + Number(m[2]));
  if (histogram.size === 0) throw new Error(`wrk: no latency histogram in its output (the script lacks HISTOGRAM_DONE_LUA?):\n${raw.slice(0, 2_000)}`);
  return histogram;
}

/** The sum of several histograms. */
export function mergeHistograms(histograms: readonly LatencyHistogram[]): LatencyHistogram {
  const merged: LatencyHistogram = new Map();
  for (const histogram of histograms) for (const [us, n] of histogram) merged.set(us, (merged.get(us) ?? 0) + n);
  return merged;
}

export function histogramCount(histogram: LatencyHistogram): number {
  let count = 0;
  for (const n of histogram.values()) count += n;
  return count;
}

/** The latency (ms) that `fraction` (0–1) of the requests did not exceed: nearest rank, as wrk computes it. */
export function histogramPercentileMs(histogram: LatencyHistogram, fraction: number): number {
  const total = histogramCount(histogram);
  if (total === 0) throw new Error('percentile of an empty latency histogram');
  const rank = Math.max(1, Math.ceil(fraction * total));
  let seen = 0;
  for (const us of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(us) ?? 0;
    if (seen >= rank) return us / 1000;
  }
  throw new Error('unreachable: the ranks add up to the total');
}
