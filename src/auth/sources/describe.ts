import type { Secret } from '../credential.js';

/**
 * Says what kind of secret was found, for source descriptions — the username at most, never the
 * secret. A switch rather than a table: each kind reads its own fields, and an exhaustive switch
 * over the union is a compile error when a kind is added.
 */
export function describeSecret(secret: Secret): string {
  switch (secret.kind) {
    case 'basic':
      return `user "${secret.username}"`;
    case 'refresh':
      return secret.username === undefined ? 'identity token' : `identity token, user "${secret.username}"`;
    case 'bearer':
      return 'registry token';
    case 'anonymous':
      return 'anonymous';
  }
}
