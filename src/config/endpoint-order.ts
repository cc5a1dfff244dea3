import type { Config } from './config.js';

/**
 * One line per registry with mirrors, for `config check`: its endpoints in the order they are tried and
 * what each is asked (`url` and `tags: true` mirrors resolve tags; the others give content by digest only).
 */
export function endpointOrder(config: Config): string[] {
  const lines: string[] = [];
  for (const registry of config.registries.values()) {
    const mirrors = registry.mirrors ?? [];
    if (mirrors.length === 0 && registry.reserve === undefined) continue;
    const order = [`1. ${registry.url} (tags and digests)`, ...mirrors.map((mirror, i) => `${i + 2}. ${mirror.url} (${mirror.tags ? 'tags and digests' : 'digests only'})`)];
    const reserve = registry.reserve === undefined ? '' : `; ${registry.reserve} pulls of the rate-limit window kept in reserve`;
    lines.push(`${registry.key}: tried in order ${order.join(', ')}${reserve}`);
  }
  return lines;
}
