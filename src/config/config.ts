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
  ca: string | undefined;
  insecure: boolean;
}

/** The resolved configuration: validated, defaulted, with durations and sizes parsed. */
export interface Config {
  listen: { host: string; port: number };
  storage: { path: string; maxSizeBytes: number };
  cache: { tagTtlMs: number; staleIfErrorMs: number };
  upstream: { timeoutMs: number; maxRedirects: number };
  defaultRegistry: string;
  registries: Map<string, RegistryConfig>;
  aliases: Map<string, string>;
  clients: { anonymous: boolean; htpasswd: string | undefined };
  log: { level: string };
  /** Where the config came from, for messages. */
  source: string;
  /** `${VAR}` references that were unset and had no default. */
  unsetVariables: string[];
}
