import type { Config } from '../config/config.js';
import { isLoopback } from '../util/loopback.js';
import { hasConfiguredCredentials, resolveAccess } from './resolve.js';

export { isLoopback };

/**
 * What the listener exposes, for the start-up log and `pullgate config check`; empty when the setup is
 * not exposed. Two cases, both about a listener that is not loopback (or `exposed` as injected) and
 * registries with credentials written in their `auth` (any type but `anonymous` and `auto`):
 * - EXPOSED: `clients.anonymous: true` lets anyone who can reach the address pull through them;
 * - SAFE DEFAULT: the config says nothing about anonymous clients, so pullgate refused them those
 *   registries; the line says why and how to allow them.
 */
export function exposureWarnings(config: Config, exposed = !isLoopback(config.listen.host)): string[] {
  if (!exposed) return [];
  const withCredentials = [...config.registries.values()].filter(hasConfiguredCredentials).map((registry) => `${registry.key} (${registry.auth.type})`);
  if (withCredentials.length === 0) return [];
  const where = `pullgate listens on ${config.listen.host}:${config.listen.port}, which is not loopback`;
  if (config.clients.anonymous === true) {
    return [
      `EXPOSED: ${where}, and lets anonymous clients ` +
        `pull through the credentials configured for ${withCredentials.join(', ')}: anyone who can reach this address can pull ` +
        `what those credentials can read. Set clients.anonymous: false with clients.htpasswd, restrict anonymous clients with ` +
        `clients.access, or listen on 127.0.0.1.`,
    ];
  }
  const safe = resolveAccess(config, exposed).safeDefault;
  if (safe === undefined) return [];
  return [
    `SAFE DEFAULT: ${where}, and credentials are configured for ${withCredentials.join(', ')}, while the config says nothing ` +
      `about anonymous clients (clients.anonymous, clients.access): anonymous pulls from ${safe.refused.join(', ')} are refused. ` +
      (config.clients.htpasswd !== undefined
        ? 'Logged-in users (clients.htpasswd) may pull everything; '
        : 'To let clients log in, set clients.htpasswd (logged-in users may then pull everything); ') +
      `to allow anonymous clients, set ` +
      `clients.anonymous: true (everything) or list what they may pull in clients.access, e.g. ` +
      `{ subjects: [anonymous], allow: ["${safe.refused[0] ?? 'ghcr.io'}/myorg/public/**"] }.`,
  ];
}
