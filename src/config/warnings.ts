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
  return warnings;
}
