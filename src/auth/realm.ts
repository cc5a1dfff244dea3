import { isIP } from 'node:net';
import { getDomain } from 'tldts';
import { withinUrlPrefix } from './url-prefix.js';

/** The registrable domain (eTLD+1), private suffixes such as fly.dev counted as boundaries. */
function registrable(host: string): string | null {
  return getDomain(host, { allowPrivateDomains: true });
}

/** Why a token realm may not receive a registry's credentials, or undefined when it may. */
export function realmRefusal(realm: string, registryUrl: string, allowedPrefixes: readonly string[]): string | undefined {
  let target: URL;
  let registry: URL;
  try {
    target = new URL(realm);
    registry = new URL(registryUrl);
  } catch {
    return `realm "${realm}" is not a URL`;
  }
  if (target.username !== '' || target.password !== '') return `realm ${target.host} carries user info`;
  if (allowedPrefixes.some((prefix) => withinUrlPrefix(target, prefix))) return undefined;
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && registry.protocol === 'http:')) {
    return `realm ${target.origin} is not https while the registry is ${registry.protocol.replace(':', '')}`;
  }
  const realmHost = target.hostname.replace(/^\[|\]$/g, '');
  const registryHost = registry.hostname.replace(/^\[|\]$/g, '');
  if (realmHost === registryHost) return undefined;
  if (isIP(realmHost) !== 0) {
    return `realm ${target.origin} is an IP address other than the registry's own`;
  }
  const realmDomain = registrable(realmHost);
  if (realmDomain !== null && realmDomain === registrable(registryHost)) return undefined;
  return (
    `realm ${target.origin} is neither on ${registryHost} nor on its registrable domain; ` +
    `list it under registries.<key>.realms if it is trusted`
  );
}
