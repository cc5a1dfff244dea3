import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ownerOf, rank } from '../../src/cluster/rendezvous.js';

function digests(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `sha256:${createHash('sha256').update(String(i)).digest('hex')}`);
}

describe('rendezvous hashing', () => {
  const three = ['10.0.0.1:5001', '10.0.0.2:5001', '10.0.0.3:5001'];
  const four = [...three, '10.0.0.4:5001'];

  it('is stable: the owner depends on the set of members, not on their order', () => {
    for (const digest of digests(200)) {
      expect(ownerOf(digest, three)).toBe(ownerOf(digest, [...three].reverse()));
      expect(rank(digest, three)[0]).toBe(ownerOf(digest, three));
    }
  });

  it('moves only the new member\'s share when a fourth joins, and nothing between the three that remain', () => {
    const all = digests(10_000);
    let moved = 0;
    for (const digest of all) {
      const before = ownerOf(digest, three);
      const after = ownerOf(digest, four);
      if (before !== after) {
        moved++;
        // A digest that moves, moves to the newcomer: never from one old member to another.
        expect(after).toBe('10.0.0.4:5001');
      }
    }
    // About a quarter (2,500 ± a few standard deviations of a binomial(10k, 1/4), σ ≈ 43).
    expect(moved).toBeGreaterThan(2_300);
    expect(moved).toBeLessThan(2_700);
  });

  it('moves only the leaver\'s share when a member leaves, to the next in its rank', () => {
    for (const digest of digests(2_000)) {
      const ranked = rank(digest, four);
      const after = ownerOf(digest, four.filter((m) => m !== '10.0.0.2:5001'));
      if (ranked[0] === '10.0.0.2:5001') expect(after).toBe(ranked[1]);
      else expect(after).toBe(ranked[0]);
    }
  });

  it('spreads digests evenly', () => {
    const counts = new Map<string, number>();
    for (const digest of digests(9_000)) {
      const owner = ownerOf(digest, three) ?? '';
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const member of three) expect(Math.abs((counts.get(member) ?? 0) - 3_000)).toBeLessThan(250);
  });

  it('has no owner without members', () => {
    expect(ownerOf('sha256:00', [])).toBeUndefined();
  });
});
