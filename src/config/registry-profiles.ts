import { DOCKER_HUB, DOCKER_HUB_API } from '../core/docker-hub.js';

/** What pullgate knows about a well-known registry, so that `registries: { <host>: {} }` just works. */
export interface RegistryProfile {
  /** The registry API's origin when it is not `https://<key>`. */
  url?: string;
  /** Redirect targets the registry needs besides its own origin (`registries.<key>.redirects`). */
  redirects?: readonly string[];
}

/**
 * Built-in defaults per well-known registry key: the one place that says where a registry's API lives
 * and where it redirects, used by the embedded config, the Kubernetes manifests and any config alike.
 */
export const REGISTRY_PROFILES: Readonly<Record<string, RegistryProfile>> = {
  [DOCKER_HUB]: { url: DOCKER_HUB_API },
  // Answers manifest and blob requests with a redirect to a regional Artifact Registry host
  // (`<region>-docker.pkg.dev`); manifests follow redirects only to trusted origins.
  'registry.k8s.io': { redirects: ['https://*.pkg.dev/'] },
};

/** A configured registry's own settings, as far as a profile can fill them in. */
export interface ProfiledFields {
  url: string;
  redirects: string[];
}

/**
 * A registry's url and redirects: each field the config sets wins, the rest comes from the key's
 * profile. A config whose `url` names another server than the profile's (a private registry under a
 * well-known key, a test double) gets no profile redirects: they describe the well-known server only.
 */
export function applyProfile(key: string, configured: { url?: string; redirects?: string[] }): ProfiledFields {
  const profile = Object.hasOwn(REGISTRY_PROFILES, key) ? REGISTRY_PROFILES[key] : undefined;
  const defaultUrl = profile?.url ?? `https://${key}`;
  const url = (configured.url ?? defaultUrl).replace(/\/+$/, '');
  const sameServer = url.toLowerCase() === defaultUrl.toLowerCase();
  return { url, redirects: configured.redirects ?? (sameServer ? [...(profile?.redirects ?? [])] : []) };
}
