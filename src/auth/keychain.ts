import type { RegistryConfig } from '../config/config.js';
import { AUTH_TYPE_TABLE } from './auth-types.js';
import type { CredentialSource } from './credential.js';
import { CredentialHelpers } from './sources/credential-helper.js';
import { parseEnvKeychain } from './sources/env-keychain.js';
import { LookupChain, type KeychainDeps } from './sources/lookup.js';

export type { KeychainDeps } from './sources/lookup.js';

/**
 * Builds the credential source for a registry from its `auth.type`'s row in the auth-type table.
 * Throws a ConfigError at startup when a `PULLGATE_REGISTRY_*` variable is unknown or
 * incomplete, whatever the type.
 */
export function keychainFor(registry: RegistryConfig, deps: KeychainDeps): CredentialSource {
  const envEntries = parseEnvKeychain(deps.env);
  const { auth, key } = registry;
  const spec = AUTH_TYPE_TABLE[auth.type];
  if (spec.source) return spec.source(registry);
  const context = { ...deps, envEntries, helpers: new CredentialHelpers(deps.env, deps.clock, deps.runHelper) };
  return new LookupChain(key, spec.lookups?.(registry, context) ?? [], `auth type "${auth.type}"`);
}
