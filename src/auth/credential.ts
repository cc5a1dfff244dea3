import { createHash } from 'node:crypto';

/** The secret material pullgate presents upstream. */
export type Secret =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker `identitytoken`): exchanged with the refresh_token grant. */
  | { kind: 'refresh'; username: string | undefined; refreshToken: string }
  /** A ready bearer token (docker `registrytoken`, a static token): sent as is, no exchange. */
  | { kind: 'bearer'; token: string };

/** A secret with where it came from (for messages, never the secret) and a key for caches. */
export interface Credential {
  secret: Secret;
  /** Human description of the source, e.g. `config registries.ghcr.io.auth (basic, user "x")`. */
  source: string;
  /** Hash identifying the secret for cache keys; not reversible to the secret. */
  fingerprint: string;
}

/**
 * Names a credential for messages clients see: the config entry and the kind of secret, never the
 * account, a file path or the secret (those are in `source`, for the operator's log and doctor).
 */
export function clientSafeSource(registry: string, credential: Credential): string {
  const kind =
    credential.secret.kind === 'basic'
      ? 'a username and password'
      : credential.secret.kind === 'refresh'
        ? 'an identity token'
        : credential.secret.kind === 'bearer'
          ? 'a registry token'
          : 'none: anonymous';
  return `registries.${registry}.auth (${kind})`;
}

/** Builds a Credential, computing its fingerprint. */
export function credential(secret: Secret, source: string): Credential {
  const material =
    secret.kind === 'basic'
      ? `basic\0${secret.username}\0${secret.password}`
      : secret.kind === 'refresh'
        ? `refresh\0${secret.username ?? ''}\0${secret.refreshToken}`
        : secret.kind === 'bearer'
          ? `bearer\0${secret.token}`
          : 'anonymous';
  const fingerprint = createHash('sha256').update(material).digest('hex').slice(0, 16);
  return { secret, source, fingerprint };
}

export const ANONYMOUS_SECRET: Secret = { kind: 'anonymous' };

/** Finds the credential for one registry; implementations may cache and refresh. */
export interface CredentialSource {
  /**
   * Returns the current credential (re-reading files or helpers as needed). `repository` (on the
   * registry) lets namespaced entries (`quay.io/org` in auth.json) win over the host entry.
   */
  get(repository?: string): Promise<Credential>;
  /** Called when upstream said the credential expired (ECR 403): drop any cached copy. */
  invalidate(): void;
}

/** The Basic `Authorization` value for a user and password. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
