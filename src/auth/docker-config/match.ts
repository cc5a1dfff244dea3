import { DOCKER_HUB, isDockerHubName } from '../../core/docker-hub.js';

/** The key docker cli stores Hub logins under, and the server URL it gives credential helpers. */
export const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

/** A credential key reduced to what matching needs: lower-case host[:port] and an optional path. */
export interface KeyPattern {
  host: string;
  path: string;
}

/** The canonical host of a registry: Docker Hub's names all become `docker.io`; others are lower-cased. */
export function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  return isDockerHubName(lower) ? DOCKER_HUB : lower;
}

/**
 * Normalises a key as written in config.json / auth.json / a keyring: drops the scheme, a
 * `/v1/` or `/v2/` API suffix and trailing slashes; Docker Hub's names become `docker.io`.
 * `quay.io/org/` keeps its path (a namespaced entry).
 */
export function normaliseKey(key: string): KeyPattern {
  const withoutScheme = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  const host = slash === -1 ? withoutScheme : withoutScheme.slice(0, slash);
  let path = slash === -1 ? '' : withoutScheme.slice(slash + 1);
  path = path.replace(/\/+$/, '');
  if (/^v[12]$/.test(path)) path = '';
  return { host: canonicalHost(host), path };
}

function splitPort(host: string): { name: string; port: string } {
  const match = /^(.*?)(?::(\d+))?$/.exec(host);
  return { name: match?.[1] ?? host, port: match?.[2] ?? '' };
}

function labelMatches(pattern: string, label: string): boolean {
  if (!pattern.includes('*')) return pattern === label;
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*')}$`);
  return regex.test(label);
}

/**
 * True when a host pattern matches a host: globs work per DNS label (`*.gcr.io` matches
 * `eu.gcr.io`, not `gcr.io` nor `a.b.gcr.io`), and ports must be equal.
 */
export function hostMatches(pattern: string, host: string): boolean {
  const p = splitPort(canonicalHost(pattern));
  const h = splitPort(canonicalHost(host));
  if (p.port !== h.port) return false;
  const patternLabels = p.name.split('.');
  const hostLabels = h.name.split('.');
  if (patternLabels.length !== hostLabels.length) return false;
  return patternLabels.every((label, index) => labelMatches(label, hostLabels[index] ?? ''));
}

/** True when a key's path is a prefix of the repository, at a `/` boundary (or the key has no path). */
export function pathMatches(keyPath: string, repository: string | undefined): boolean {
  if (keyPath === '') return true;
  if (repository === undefined) return false;
  return repository === keyPath || repository.startsWith(`${keyPath}/`);
}

/** How well a key matches: higher is more specific; undefined = no match. */
export function matchScore(key: string, host: string, repository: string | undefined): number | undefined {
  const pattern = normaliseKey(key);
  if (!hostMatches(pattern.host, host) || !pathMatches(pattern.path, repository)) return undefined;
  // A longer path wins; at equal paths an exact host beats a glob, then the longer key.
  const exact = pattern.host.includes('*') ? 0 : 1;
  return pattern.path.length * 1000 + exact * 500 + Math.min(key.length, 499);
}

/**
 * Picks the best entry for (host, repository) among keyed entries: namespaced keys longest first
 * (`quay.io/a/b` › `quay.io/a` › `quay.io`), exact hosts before globs. Entries the caller marks
 * unusable (placeholders) are skipped.
 */
export function bestMatch<T>(entries: Iterable<[string, T]>, host: string, repository: string | undefined, usable: (value: T) => boolean): [string, T] | undefined {
  let best: { score: number; entry: [string, T] } | undefined;
  for (const entry of entries) {
    if (!usable(entry[1])) continue;
    const score = matchScore(entry[0], host, repository);
    if (score !== undefined && (best === undefined || score > best.score)) best = { score, entry };
  }
  return best?.entry;
}

/** The server URL given to a credential helper for a host (docker cli's form for Docker Hub). */
export function helperServerUrl(host: string): string {
  return canonicalHost(host) === DOCKER_HUB ? DOCKER_HUB_SERVER : host;
}
