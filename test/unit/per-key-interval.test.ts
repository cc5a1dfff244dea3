import { describe, expect, it } from 'vitest';
import { PerKeyInterval } from '../../src/util/per-key-interval.js';

describe('PerKeyInterval', () => {
  it('is due for a key once per interval, each key on its own', () => {
    const marks = new PerKeyInterval<string>(10, 1_000);
    expect(marks.due('a', 0)).toBe(true);
    expect(marks.due('a', 999)).toBe(false);
    expect(marks.due('b', 999)).toBe(true);
    expect(marks.due('a', 1_000)).toBe(true);
    // The interval runs from the last time it was due, not from the asks in between.
    expect(marks.due('a', 1_999)).toBe(false);
    expect(marks.due('a', 2_000)).toBe(true);
  });

  it('counts a time noted by other means, and starts over for a forgotten key', () => {
    const marks = new PerKeyInterval<string>(10, 1_000);
    marks.done('a', 500);
    expect(marks.due('a', 1_000)).toBe(false);
    expect(marks.due('a', 1_500)).toBe(true);
    marks.forget('a');
    expect(marks.due('a', 1_600)).toBe(true);
  });

  it('is due early, never late, for a key its bounded memory let go', () => {
    const marks = new PerKeyInterval<number>(4, 1_000);
    for (let key = 0; key < 10; key++) expect(marks.due(key, 0)).toBe(true);
    expect(marks.due(0, 1)).toBe(true);
  });
});
