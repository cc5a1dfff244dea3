import type { Secret } from '../credential.js';

/** Says what kind of secret was found, for source descriptions — the username at most, never the secret. */
export function describeSecret(secret: Secret): string {
  switch (secret.kind) {
    case 'basic':
      return `user "${secret.username}"`;
    case 'refresh':
      return secret.username === undefined ? 'identity token' : `identity token, user "${secret.username}"`;
    case 'bearer':
      return 'registry token';
    default:
      return 'anonymous';
  }
}
