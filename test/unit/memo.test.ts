import { describe, expect, it } from 'vitest';
import { Memo } from '../../src/util/memo.js';

describe('Memo', () => {
  it('returns what was set, updates in place, forgets on delete and clear', () => {
    const memo = new Memo<string, number>(10);
    memo.set('a', 1);
    memo.set('a', 2);
    expect(memo.get('a')).toBe(2);
    expect(memo.has('b')).toBe(false);
    memo.set('b', 3);
    memo.delete('a');
    expect(memo.get('a')).toBeUndefined();
    memo.clear();
    expect(memo.get('b')).toBeUndefined();
    expect(memo.size).toBe(0);
  });

  it('never holds more than its bound, however many distinct keys pass through', () => {
    const memo = new Memo<number, number>(100);
    for (let i = 0; i < 10_000; i += 1) {
      memo.set(i, i);
      expect(memo.size).toBeLessThanOrEqual(100);
    }
    // The most recent keys are there; the first ones are long gone.
    expect(memo.get(9_999)).toBe(9_999);
    expect(memo.get(0)).toBeUndefined();
  });

  it('keeps an entry that is used while others stream past, and drops one that is not', () => {
    const memo = new Memo<string, number>(100);
    memo.set('hot', 1);
    memo.set('cold', 2);
    for (let i = 0; i < 1_000; i += 1) {
      memo.set(`k${i}`, i);
      if (i % 10 === 0) expect(memo.get('hot')).toBe(1);
    }
    expect(memo.get('hot')).toBe(1);
    expect(memo.get('cold')).toBeUndefined();
  });

  it('moves an entry found in the old generation back to the young one, so the next turnover keeps it', () => {
    const memo = new Memo<string, number>(4);
    memo.set('a', 1);
    memo.set('b', 2); // the young generation is full (2 of 4): it becomes the old one
    expect(memo.get('a')).toBe(1); // back to the young one
    memo.set('c', 3); // the young one (a, c) turns over; b is in the dropped generation
    expect(memo.get('a')).toBe(1);
    expect(memo.get('c')).toBe(3);
    expect(memo.get('b')).toBeUndefined();
  });

  it('refuses a bound that cannot hold two generations', () => {
    expect(() => new Memo(1)).toThrow(RangeError);
    expect(() => new Memo(2.5)).toThrow(RangeError);
  });
});
