// Repeated figures: the median a table shows, and the spread (min–max) beside it.

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? Number.NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? Number.NaN) + hi) / 2;
}

/** Smallest and largest of `xs` (NaN when empty). */
export function spread(xs: readonly number[]): { min: number; max: number } {
  if (xs.length === 0) return { min: Number.NaN, max: Number.NaN };
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { min, max };
}
