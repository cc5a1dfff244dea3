import type { RegistryConfig } from '../../config/config.js';
import type { CredentialHelpers } from './credential-helper.js';
import { dockerConfigLookups } from './docker-config.js';
import { EnvKeychainLookup, type EnvEntry } from './env-keychain.js';
import type { KeychainDeps, Lookup } from './lookup.js';
import { RktLookup } from './rkt.js';

/**
 * The `auto` order: environment keychain → DOCKER_AUTH_CONFIG, docker config.json, containers
 * auth.json, ~/.dockercfg → rkt auth.d (`rktPaths`, else the fixed directories) → `inferred`, the
 * cloud provider's lookups chosen from the host by the auth-type table (ECR, GCR / Artifact
 * Registry, ACR with an Azure identity, ghcr.io with GITHUB_TOKEN, cgr.dev with
 * CHAINGUARD_IDENTITY) → anonymous.
 */
export function autoLookups(registry: RegistryConfig, deps: KeychainDeps, envEntries: EnvEntry[], helpers: CredentialHelpers, inferred: Lookup[]): Lookup[] {
  return [
    ...(envEntries.length > 0 ? [new EnvKeychainLookup(envEntries)] : []),
    ...dockerConfigLookups(undefined, deps.env, helpers),
    new RktLookup(registry.auth.rktPaths ?? deps.rktDirs),
    ...inferred,
  ];
}
