import { describe, expect, it } from 'vitest';
import { ACCESS_SAMPLE_EVERY, AccessSampling } from '../../src/http/access-sampling.js';

describe('AccessSampling (log.access)', () => {
  it('always logs misses, refusals, errors and aborted responses, whatever the mode', () => {
    for (const mode of ['all', 'sampled', 'misses'] as const) {
      const sampling = new AccessSampling(mode);
      for (let i = 0; i < 3; i++) {
        expect(sampling.weight(200, 'upstream', true), mode).toBe(1);
        expect(sampling.weight(200, 'stale', true), mode).toBe(1);
        expect(sampling.weight(200, 'coalesced', true), mode).toBe(1);
        expect(sampling.weight(403, undefined, true), mode).toBe(1);
        expect(sampling.weight(503, 'cache', true), mode).toBe(1);
        expect(sampling.weight(200, 'cache', false), mode).toBe(1);
      }
    }
  });

  it('logs every routine hit under all, none under misses, and the first of each ACCESS_SAMPLE_EVERY under sampled', () => {
    const all = new AccessSampling('all');
    const misses = new AccessSampling('misses');
    const sampled = new AccessSampling('sampled');
    const weights = { all: [] as number[], misses: [] as number[], sampled: [] as number[] };
    for (let i = 0; i < 3 * ACCESS_SAMPLE_EVERY; i++) {
      const source = i % 2 === 0 ? 'cache' : undefined;
      weights.all.push(all.weight(200, source, true));
      weights.misses.push(misses.weight(200, source, true));
      weights.sampled.push(sampled.weight(200, source, true));
    }
    expect(weights.all.every((w) => w === 1)).toBe(true);
    expect(weights.misses.every((w) => w === 0)).toBe(true);
    expect(weights.sampled.map((w, i) => [i, w]).filter(([, w]) => w !== 0)).toEqual([
      [0, ACCESS_SAMPLE_EVERY],
      [ACCESS_SAMPLE_EVERY, ACCESS_SAMPLE_EVERY],
      [2 * ACCESS_SAMPLE_EVERY, ACCESS_SAMPLE_EVERY],
    ]);
  });
});
