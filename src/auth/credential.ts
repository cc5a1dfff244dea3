import { createHash } from 'node:crypto';

/** The secret material pullgate presents upstream. */
export type Secret =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker `identitytoken`): exchanged with the refresh_token grant. */
  | { kind: 'refresh'; username: string | undefined; refreshToken: string }
  /** A ready bearer token (docker `registrytoken`, a static token): sent as is, no exchange. */
  | { kind: 'bearer'; token: string };

/** Providers that mint credentials from a cloud or CI identity. */
export type CredentialProvider = 'ecr' | 'gcp' | 'acr' | 'github' | 'chainguard';

/**
 * Where a credential came from, as facts doctor can reason on: never the secret; a file path or a
 * variable name at most (those are for the operator, not for clients).
 */
export type CredentialOrigin =
  /** The pullgate config's own auth block (`anonymous`, `basic`, `token`); `file` when read from passwordFile / tokenFile. */
  | { kind: 'config'; file: string | undefined }
  /** An environment variable: the keychain's `PULLGATE_REGISTRY_HOSTNAME[_X]` that matched, or DOCKER_AUTH_CONFIG. */
  | { kind: 'environment'; variable: string }
  /** A credentials file (docker config.json, containers auth.json, .dockerconfigjson, rkt auth.d, DOCKER_AUTH_CONFIG). */
  | { kind: 'file'; file: string }
  /** A `docker-credential-<helper>` program named by credHelpers or credsStore. */
  | { kind: 'credential-helper'; helper: string }
  /** Minted from a cloud or CI identity. */
  | { kind: 'provider'; provider: CredentialProvider }
  /** No place had credentials: pulled anonymously. `chain` is e.g. `auth type "auto"`; `problems` say what failed while searching. */
  | { kind: 'none'; chain: string; searched: string[]; problems: string[] };

/** A secret with where it came from (for messages, never the secret) and a key for caches. */
export interface Credential {
  secret: Secret;
  /** Human description of the source, e.g. `config registries.ghcr.io.auth (basic, user "x")`: for the log and doctor. */
  source: string;
  /** The same, as typed facts. */
  origin: CredentialOrigin;
  /** Hash identifying the secret for cache keys; not reversible to the secret. */
  fingerprint: string;
}

/** What clients may be told about each kind of secret (one row per kind: a new kind without one does not compile). */
const SECRET_PHRASES: Record<Secret['kind'], string> = {
  anonymous: 'anonymous',
  basic: 'a username and password',
  refresh: 'an identity token',
  bearer: 'a registry token',
};

/** What clients may be told about each kind of origin: the kind of place, never the place. */
const ORIGIN_PHRASES: Record<Exclude<CredentialOrigin['kind'], 'none'>, string> = {
  config: 'the pullgate config',
  environment: 'an environment variable',
  file: 'a credentials file (docker, containers or rkt)',
  'credential-helper': 'a docker credential helper',
  provider: 'a cloud or CI identity',
};

/**
 * Names a credential for messages clients see: the kind of secret and the kind of place it came
 * from, never the account, a file path or the secret (those are in `source`, for the operator's
 * log and doctor). E.g. `registries.ghcr.io.auth (a username and password) from the pullgate config`,
 * `anonymous (auth type "auto": no credentials found)`.
 */
export function clientSafeSource(registry: string, credential: Credential): string {
  const { origin, secret } = credential;
  if (origin.kind === 'none') return `anonymous (${origin.chain}: no credentials found)`;
  if (secret.kind === 'anonymous') return 'anonymous (auth type "anonymous")';
  return `registries.${registry}.auth (${SECRET_PHRASES[secret.kind]}) from ${ORIGIN_PHRASES[origin.kind]}`;
}

/** What the fingerprint hashes: the whole secret, so two accounts never share cached tokens. */
function fingerprintMaterial(secret: Secret): string {
  // A switch, not a table: each kind has its own fields, and narrowing reads them without casts.
  switch (secret.kind) {
    case 'basic':
      return `basic\0${secret.username}\0${secret.password}`;
    case 'refresh':
      return `refresh\0${secret.username ?? ''}\0${secret.refreshToken}`;
    case 'bearer':
      return `bearer\0${secret.token}`;
    case 'anonymous':
      return 'anonymous';
  }
}

/** Builds a Credential, computing its fingerprint. */
export function credential(secret: Secret, source: string, origin: CredentialOrigin): Credential {
  const fingerprint = createHash('sha256').update(fingerprintMaterial(secret)).digest('hex').slice(0, 16);
  return { secret, source, origin, fingerprint };
}

/**
 * The user and password that answer a Basic challenge: a login as is, an identity token under its
 * user name; none for a bearer token (sent as is) or anonymous.
 */
export function basicLogin(secret: Secret): { username: string; password: string } | undefined {
  if (secret.kind === 'basic') return secret;
  if (secret.kind === 'refresh' && secret.username) return { username: secret.username, password: secret.refreshToken };
  return undefined;
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
