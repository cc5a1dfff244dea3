import { describe, expect, it } from 'vitest';
import { histogramCount, histogramPercentileMs, mergeHistograms, parseHistogram } from '../../bench/lib/latency-histogram.js';

describe('bench latency histogram', () => {
  it('reads the counts a wrk done() hook printed, among wrk\'s own lines', () => {
    const raw = ['Running 2s test @ http://127.0.0.1:1/v2/', 'HIST 900 3', 'Requests/sec: 10.00', 'HIST 1500 1', 'HIST 900 2', ''].join('\n');
    const histogram = parseHistogram(raw);
    expect([...histogram]).toEqual([
      [900, 5],
      [1500, 1],
    ]);
  });

  it('refuses output without a histogram (a script without the hook)', () => {
    expect(() => parseHistogram('Requests/sec: 10.00\n')).toThrow(/no latency histogram/);
  });

  it('reads a percentile over several runs by nearest rank', () => {
    // 98 fast requests in one run, 2 slow ones in another: the p99 over both is the first slow one.
    const fast = new Map([[1_000, 98]]);
    const slow = new Map([
      [250_000, 1],
      [400_000, 1],
    ]);
    const merged = mergeHistograms([fast, slow]);
    expect(histogramCount(merged)).toBe(100);
    expect(histogramPercentileMs(merged, 0.98)).toBe(1);
    expect(histogramPercentileMs(merged, 0.99)).toBe(250);
    expect(histogramPercentileMs(merged, 1)).toBe(400);
    expect(histogramPercentileMs(fast, 0.99)).toBe(1);
  });

  it('has no percentile of nothing', () => {
    expect(() => histogramPercentileMs(new Map(), 0.99)).toThrow(/empty/);
  });
});
