import { createHash } from 'node:crypto';
import { digestAlgorithm } from '../routing/reference.js';

/** The digest of bytes with the algorithm of `like` (sha256 unless `like` says sha512). */
export function digestOf(bytes: Buffer, like = 'sha256:'): string {
  const algorithm = digestAlgorithm(like);
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
