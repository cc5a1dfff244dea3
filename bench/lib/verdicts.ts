// Verdicts on ratio targets ("pullgate ≥ 0.9× nginx"), from the medians of repeated figures.
import type { Verdict } from './results.js';
import { fmt, ratio } from './report.js';
import { median } from './stats.js';

export interface RatioTarget {
  issue: number;
  target: string;
  /** pullgate's samples and the reference's. */
  ours: readonly number[] | undefined;
  theirs: readonly number[] | undefined;
  /** Met when ours/theirs is at least (`atLeast`) or at most (`atMost`) this. */
  atLeast?: number;
  atMost?: number;
  unit: string;
  digits?: number;
  /** False when a run had errors: then the target is not met whatever the ratio. */
  clean?: boolean;
}

/** "0.73× (2,335 vs 3,205 MB/s)" and whether the bound holds. */
export function ratioVerdict(t: RatioTarget): Verdict {
  const a = median(t.ours ?? []);
  const b = median(t.theirs ?? []);
  const x = a / b;
  const measured = Number.isFinite(x) ? `${ratio(a, b)} (${fmt(a, t.digits ?? 0)} vs ${fmt(b, t.digits ?? 0)} ${t.unit})` : '—';
  let met: boolean | undefined;
  if (Number.isFinite(x)) {
    met = (t.atLeast === undefined || x >= t.atLeast) && (t.atMost === undefined || x <= t.atMost) && t.clean !== false;
  }
  return { issue: t.issue, target: t.target, measured, met };
}
