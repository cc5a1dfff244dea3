import type { Config } from './config.js';

/** True when an alias could also be a Docker Hub namespace (those have neither a dot nor a colon). */
export function aliasCanShadowHub(alias: string): boolean {
  return !alias.includes('.') && !alias.includes(':') && alias !== 'localhost';
}

/**
 * What in a valid config is likely to surprise its operator; printed by `config check` and logged at
 * start-up. Unset `${VAR}`s are reported beside these by the callers (they know the variable names).
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.defaultRegistry === 'docker.io') {
    for (const [alias, target] of config.aliases) {
      if (!aliasCanShadowHub(alias)) continue;
      warnings.push(
        `aliases.${alias}: docker pulls Docker Hub images through registry-mirrors without a registry in the path, ` +
          `so Docker Hub's "${alias}/…" images would go to ${target}; give the alias a dot (e.g. "${alias}.mirror") ` +
          `or use the registry key "${target}/…" instead`,
      );
    }
  }
  const login = containerdLoginWarning(config);
  if (login !== undefined) warnings.push(login);
  return warnings;
}

/**
 * Why containerd cannot use this mirror, or undefined when it can: containerd sends no login to a
 * mirror (`ctr` and the CRI have none for it), so with `clients.anonymous: false` every pull through
 * the hosts.toml of `pullgate hosts containerd` gets 401 and containerd quietly pulls from the
 * registry itself. The fix names both ways out.
 */
export function containerdLoginWarning(config: Config): string | undefined {
  if (config.clients.anonymous !== false) return undefined;
  return (
    'clients.anonymous is false, but containerd sends no login to a mirror: with the hosts.toml of `pullgate hosts containerd` ' +
    'its pulls get 401 from pullgate and go to the registry itself, without a word. Leave clients.anonymous unset and allow anonymous ' +
    'pulls of what the nodes need (clients.access: [{ subjects: [anonymous], allow: ["registry.k8s.io/**"] }, …]), or add a login to ' +
    'each hosts.toml under its host: ' +
    '[host."<mirror>".header] authorization = "Basic <base64 of user:password>"'
  );
}
