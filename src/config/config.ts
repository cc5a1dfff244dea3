import type { ClusterConfig } from './cluster-config.js';
import type { AuthType, RawAuth } from './schema.js';
import type { UnsetReference } from './interpolate.js';
import type { LimitSettings } from './limits.js';

/** `log.access`: which requests get an access-log line (every one, a sample of routine hits, or none of them). */
export type AccessLogMode = 'all' | 'sampled' | 'misses';

/** `tls:` as resolved: PEM files; `cert` may hold the whole chain, `clientCA` turns on mutual TLS. */
export interface TlsConfig {
  cert: string;
  key: string;
  clientCA: string | undefined;
}

/** `registries.<host>.repositories` as configured: patterns over the repository name on that registry. */
export interface RepositoryLists {
  allow?: string[];
  deny?: string[];
}

/** One rule of `clients.access`, or one pullgate added (`clients.anonymous`, the safe default). */
export interface AccessRule {
  /** User names, group names, `anonymous`, `authenticated`. */
  subjects: string[];
  effect: 'allow' | 'deny';
  patterns: string[];
  /** Where the rule comes from, for errors and logs: `clients.access[2]`, `clients.anonymous: true` … */
  origin: string;
}

/** One upstream registry as pullgate uses it. */
export interface RegistryConfig {
  /** The key in `registries:`, which is also the name clients use (`docker.io`, `ghcr.io`, `host:5000`). */
  key: string;
  /** Endpoint origin without trailing slash (`https://registry-1.docker.io`). */
  url: string;
  auth: RawAuth & { type: AuthType };
  /** URL prefixes that may receive credentials besides the registry's own host and registrable domain. */
  realms: string[];
  /** URL prefixes (host may start with `*.`) that redirects may lead to besides the registry's own origin. */
  redirects: string[];
  ca: string | undefined;
  insecure: boolean;
  /** `repositories: { allow, deny }`: what the mirror may fetch from this registry; undefined = everything. */
  repositories?: RepositoryLists | undefined;
  /** Fallback endpoints tried in order after `url` fails (none when absent). */
  mirrors?: MirrorConfig[] | undefined;
  /** `rateLimit.reserve`: pulls of the window kept in reserve; 0 or absent = rationing off. */
  reserve?: number | undefined;
}

/** One fallback endpoint of a registry, with its own credentials. */
export interface MirrorConfig {
  /** Origin without trailing slash. */
  url: string;
  /** Its own auth (the registry's applies to `url` only); `anonymous` when not given. */
  auth: RawAuth & { type: AuthType };
  /** Trusted to resolve tags (and tag lists, referrers); otherwise asked for content by digest only. */
  tags: boolean;
}

/** `storage.s3` resolved: an S3-compatible bucket shared by every replica. */
export interface S3Config {
  /** Undefined for AWS S3. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** `""` or ending in `/`. */
  prefix: string;
  forcePathStyle: boolean;
  /** Answer blob GETs with a 307 to a short-lived presigned URL. */
  redirect: boolean;
  /** Objects not read for this long are deleted by `cache prune`; undefined keeps them. */
  maxAgeMs: number | undefined;
}

/** The resolved configuration: validated, defaulted, with durations and sizes parsed. */
export interface Config {
  listen: { host: string; port: number };
  /** `path`/`maxSizeBytes`: the local tier; `s3`: the shared store in front of which the local tier sits, when configured. */
  storage: { path: string; maxSizeBytes: number; s3: S3Config | undefined };
  cache: { tagTtlMs: number; staleIfErrorMs: number };
  /**
   * `timeoutMs`: the longest silence of an upstream connection (blobs have only this); `deadlineMs`: the
   * longest a manifest, tag list, referrers or token answer may take in all (0: none).
   */
  upstream: { timeoutMs: number; deadlineMs: number; maxRedirects: number };
  /** Registry for names without a registry prefix; undefined when none is configured (such names get a 404). */
  defaultRegistry: string | undefined;
  registries: Map<string, RegistryConfig>;
  aliases: Map<string, string>;
  clients: {
    /** As written; undefined when the config does not say (then the safe default applies, see access/resolve.ts). */
    anonymous: boolean | undefined;
    htpasswd: string | undefined;
    /** `clients.groups`: group name → user names. */
    groups: Map<string, string[]>;
    /** `clients.access` as written (each rule with its origin); undefined when absent. */
    access: AccessRule[] | undefined;
    /** Failed logins per client address before a lockout, the first lockout (doubling) and its cap. */
    loginThrottle: { failures: number; lockoutMs: number; maxLockoutMs: number };
    /** `clients.limits`: per-client request rate and concurrency (by user, else address); undefined = no limit. */
    limits: LimitSettings | undefined;
    /**
     * Open connections at most, and from one client address (IPv4, or the IPv6 /64); time for a request's
     * headers; keep-alive idle; a response making no progress.
     */
    connections: { max: number; perAddress: number; headersTimeoutMs: number; keepAliveMs: number; idleMs: number };
  };
  /** `access`: which requests get an access-log line (see AccessSampling). */
  log: { level: string; access: AccessLogMode };
  /** `/metrics` requires a client login (`auth`), and/or is served on a listener of its own (`listen`) instead of the main one. */
  metrics: { auth: boolean; listen: { host: string; port: number } | undefined };
  /**
   * `status.allow`: the subjects (users, groups, `authenticated`, `anonymous`) that may see `/` and
   * `/api/status` on an exposed listener; undefined = nobody but loopback peers. A loopback listener shows them to anyone.
   */
  status: { allow: string[] | undefined };
  /** HTTPS on the listener (files re-read when they change); undefined = plain HTTP. */
  tls: TlsConfig | undefined;
  /** Replicas sharing one store; undefined = a single process. */
  cluster: ClusterConfig | undefined;
  /** Where the config came from, for messages. */
  source: string;
  /** `${VAR}` references that were unset and had no default. */
  unsetVariables: string[];
  /** Each use of such a variable with the config path it fed (`registries.ghcr.io.auth.password`), for doctor. */
  unsetReferences: UnsetReference[];
}
