import type { RegistryConfig } from '../config/config.js';
import type { Deps } from '../deps.js';
import { ANONYMOUS_SECRET, credential, type Credential, type CredentialSource } from './credential.js';
import { ConfigCredentialSource } from './config-source.js';

/** Anonymous access, used for `auto` when no other source has credentials for the registry. */
class AnonymousSource implements CredentialSource {
  constructor(private readonly reason: string) {}
  get(): Promise<Credential> {
    return Promise.resolve(credential(ANONYMOUS_SECRET, this.reason));
  }
  invalidate(): void {
    // nothing cached
  }
}

/** Picks the credential source for a registry from its `auth.type`. */
export function keychainFor(registry: RegistryConfig, _deps: Pick<Deps, 'env' | 'clock'>): CredentialSource {
  switch (registry.auth.type) {
    case 'anonymous':
    case 'basic':
    case 'token':
      return new ConfigCredentialSource(registry);
    default:
      return new AnonymousSource(`anonymous (auth type "${registry.auth.type}" found no credentials for ${registry.key})`);
  }
}
