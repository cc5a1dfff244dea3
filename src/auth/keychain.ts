import type { RegistryConfig } from '../config/config.js';
import { ConfigCredentialSource } from './config-source.js';
import type { CredentialSource } from './credential.js';
import { AcrLookup } from './sources/acr.js';
import { chainguardLookup } from './sources/chainguard.js';
import { autoLookups } from './sources/auto.js';
import { CredentialHelpers } from './sources/credential-helper.js';
import { dockerConfigLookups } from './sources/docker-config.js';
import { EcrLookup, parseEcrHost, sdkEcrApi } from './sources/ecr.js';
import { parseEnvKeychain } from './sources/env-keychain.js';
import { GcpLookup } from './sources/gcp.js';
import { GithubLookup } from './sources/github.js';
import { RktLookup } from './sources/rkt.js';
import { LookupChain, type KeychainDeps, type Lookup } from './sources/lookup.js';

export type { KeychainDeps } from './sources/lookup.js';

/**
 * Picks the credential source for a registry from its `auth.type`. Throws a ConfigError at
 * startup when a `PULLGATE_REGISTRY_*` variable is unknown or incomplete, whatever the type.
 */
export function keychainFor(registry: RegistryConfig, deps: KeychainDeps): CredentialSource {
  const envEntries = parseEnvKeychain(deps.env);
  const { auth, key } = registry;
  const helpers = new CredentialHelpers(deps.env, deps.clock, deps.runHelper);
  const chain = (lookups: Lookup[]): CredentialSource => new LookupChain(key, lookups, `auth type "${auth.type}"`);
  switch (auth.type) {
    case 'anonymous':
    case 'basic':
    case 'token':
      return new ConfigCredentialSource(registry);
    case 'docker-config':
      return chain([...dockerConfigLookups(auth.path, deps.env, helpers), ...(auth.rktPaths ? [new RktLookup(auth.rktPaths)] : [])]);
    case 'ecr':
      return chain([new EcrLookup(parseEcrHost(key) ? key : new URL(registry.url).host, deps.ecrApi ?? sdkEcrApi, deps.env, deps.clock)]);
    case 'gcp':
      return chain([new GcpLookup(deps.env, deps.clock, deps.dispatcher)]);
    case 'acr':
      return chain([new AcrLookup(key, registry.url, deps.env, deps.clock, deps.dispatcher)]);
    case 'chainguard':
      return chain([chainguardLookup(registry, deps)]);
    case 'github':
      return chain([new GithubLookup({ username: auth.username, token: auth.token, tokenFile: auth.tokenFile }, deps.env)]);
    case 'auto':
      return chain(autoLookups(registry, deps, envEntries, helpers));
  }
}
