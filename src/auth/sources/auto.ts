import type { RegistryConfig } from '../../config/config.js';
import { AcrLookup, isAcrHost } from './acr.js';
import { CGR_HOST, chainguardLookup } from './chainguard.js';
import type { CredentialHelpers } from './credential-helper.js';
import { dockerConfigLookups } from './docker-config.js';
import { EcrLookup, parseEcrHost, sdkEcrApi } from './ecr.js';
import { EnvKeychainLookup, type EnvEntry } from './env-keychain.js';
import { GcpLookup, isGoogleHost } from './gcp.js';
import { GHCR_HOST, GithubLookup } from './github.js';
import type { KeychainDeps, Lookup } from './lookup.js';
import { RktLookup } from './rkt.js';

/** The host of the registry's URL when it differs from its key (a mirror key for an ECR URL …). */
function hostsOf(registry: RegistryConfig): string[] {
  const urlHost = new URL(registry.url).host.toLowerCase();
  return urlHost === registry.key ? [registry.key] : [registry.key, urlHost];
}

/**
 * The cloud provider's source inferred from the registry host: ECR (AWS SDK), GCR / Artifact
 * Registry (service-account key or metadata server), ACR (only when `AZURE_*` or
 * `IDENTITY_ENDPOINT` say an Azure identity is available), ghcr.io with `GITHUB_TOKEN`, cgr.dev
 * with `CHAINGUARD_IDENTITY` (a Chainguard assumable identity).
 */
export function cloudLookups(registry: RegistryConfig, deps: KeychainDeps): Lookup[] {
  const { env, clock } = deps;
  for (const host of hostsOf(registry)) {
    if (parseEcrHost(host)) return [new EcrLookup(host, deps.ecrApi ?? sdkEcrApi, env, clock)];
    if (isGoogleHost(host)) return [new GcpLookup(env, clock, deps.dispatcher)];
    if (isAcrHost(host) && (env.AZURE_CLIENT_ID || env.AZURE_TENANT_ID || env.IDENTITY_ENDPOINT)) {
      return [new AcrLookup(host, registry.url, env, clock, deps.dispatcher)];
    }
    if (host === GHCR_HOST && env.GITHUB_TOKEN) return [new GithubLookup({ username: undefined, token: undefined, tokenFile: undefined }, env)];
    if (host === CGR_HOST && env.CHAINGUARD_IDENTITY) return [chainguardLookup(registry, deps)];
  }
  return [];
}

/**
 * The `auto` order: environment keychain → DOCKER_AUTH_CONFIG, docker config.json, containers
 * auth.json, ~/.dockercfg → rkt auth.d → the cloud provider inferred from the host → anonymous.
 */
export function autoLookups(registry: RegistryConfig, deps: KeychainDeps, envEntries: EnvEntry[], helpers: CredentialHelpers): Lookup[] {
  return [
    ...(envEntries.length > 0 ? [new EnvKeychainLookup(envEntries)] : []),
    ...dockerConfigLookups(undefined, deps.env, helpers),
    new RktLookup(registry.auth.rktPaths ?? deps.rktDirs),
    ...cloudLookups(registry, deps),
  ];
}
