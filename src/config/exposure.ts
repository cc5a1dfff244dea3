import { isIP } from 'node:net';
import type { Config } from './config.js';

/** True when a listen host accepts connections from this machine only. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return /^::ffff:127\./.test(bare);
}

/**
 * Warns when anyone who can reach the listener may pull through configured credentials: `listen`
 * is not loopback, anonymous clients are allowed, and some registry has credentials written in
 * its `auth` (any type but `anonymous` and `auto`). Logged at start-up and printed by
 * `pullgate config check`; empty when the setup is not exposed.
 */
export function exposureWarnings(config: Config): string[] {
  if (isLoopback(config.listen.host) || !config.clients.anonymous) return [];
  const withCredentials = [...config.registries.values()]
    .filter((registry) => registry.auth.type !== 'anonymous' && registry.auth.type !== 'auto')
    .map((registry) => `${registry.key} (${registry.auth.type})`);
  if (withCredentials.length === 0) return [];
  return [
    `EXPOSED: pullgate listens on ${config.listen.host}:${config.listen.port}, which is not loopback, and lets anonymous clients ` +
      `pull through the credentials configured for ${withCredentials.join(', ')}: anyone who can reach this address can pull ` +
      `what those credentials can read. Set clients.anonymous: false with clients.htpasswd, or listen on 127.0.0.1.`,
  ];
}
