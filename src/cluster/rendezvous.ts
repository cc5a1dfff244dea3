import { createHash } from 'node:crypto';

/** A member's weight for a key: the first 64 bits of sha256(member, key), so every replica computes the same. */
function weight(member: string, key: string): bigint {
  return createHash('sha256').update(member).update('\0').update(key).digest().readBigUInt64BE(0);
}

/**
 * Members ordered by rendezvous (highest-random-weight) hashing of `key`: the first is the owner, the
 * next the owner when the first is down. A member joining or leaving moves only the keys it owns (or
 * comes to own); keys never move between the members that remain. Ties (never seen in practice) go to
 * the smaller id, so the order depends on the set of members alone, not on their order.
 */
export function rank(key: string, members: readonly string[]): string[] {
  const weighted = members.map((member) => ({ member, weight: weight(member, key) }));
  weighted.sort((a, b) => (a.weight === b.weight ? (a.member < b.member ? -1 : 1) : a.weight > b.weight ? -1 : 1));
  return weighted.map((entry) => entry.member);
}

/** The member that owns `key` among `members`, or undefined when there is none. */
export function ownerOf(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const member of members) {
    const w = weight(member, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = w;
    }
  }
  return best;
}
