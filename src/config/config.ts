import type { AuthType, RawAuth } from './schema.js';

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
}

/** The resolved configuration: validated, defaulted, with durations and sizes parsed. */
export interface Config {
  listen: { host: string; port: number };
  storage: { path: string; maxSizeBytes: number };
  cache: { tagTtlMs: number; staleIfErrorMs: number };
  upstream: { timeoutMs: number; maxRedirects: number };
  /** Registry for names without a registry prefix; undefined when none is configured (such names get a 404). */
  defaultRegistry: string | undefined;
  registries: Map<string, RegistryConfig>;
  aliases: Map<string, string>;
  clients: {
    anonymous: boolean;
    htpasswd: string | undefined;
    /** Failed logins per client address before a lockout, the first lockout (doubling) and its cap. */
    loginThrottle: { failures: number; lockoutMs: number; maxLockoutMs: number };
    /** Open connections at most; time for a request's headers; keep-alive idle; a response making no progress. */
    connections: { max: number; headersTimeoutMs: number; keepAliveMs: number; idleMs: number };
  };
  log: { level: string };
  /** Where the config came from, for messages. */
  source: string;
  /** `${VAR}` references that were unset and had no default. */
  unsetVariables: string[];
}
