/** Docker Hub's registry key in the config and the canonical host pullgate uses for it. */
export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API lives (the key `docker.io` defaults to it). */
export const DOCKER_HUB_API = 'https://registry-1.docker.io';

/** Names under which Docker Hub appears in image references and credential stores. */
const DOCKER_HUB_NAMES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);

/** True for any of Docker Hub's names (lower-case host, no port). */
export function isDockerHubName(host: string): boolean {
  return DOCKER_HUB_NAMES.has(host);
}
