import { createHash } from 'node:crypto';

/** The digest of bytes with the algorithm of `like` (sha256 unless `like` says sha512). */
export function digestOf(bytes: Buffer, like = 'sha256:'): string {
  const algorithm = like.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
