import type { Config, RegistryConfig } from '../config/config.js';
import { isLoopback } from '../util/loopback.js';
import { RepositoryFilter } from './fetch-policy.js';
import { AccessPolicy, type AccessRule } from './policy.js';

/** The rules in force for one server, where each came from, and whether the safe default shaped them. */
export interface ResolvedAccess {
  rules: AccessRule[];
  groups: Map<string, string[]>;
  /**
   * Set when the safe default refused anonymous clients the registries behind credentials: the
   * config says nothing about `clients.anonymous` or `clients.access`, the listener is not
   * loopback, and these registries have credentials configured.
   */
  safeDefault: { refused: string[] } | undefined;
}

/** Origins of the rules pullgate adds, as they appear in errors, logs and `config check`. */
export const ORIGIN = {
  users: 'default (no clients.access): logged-in users may pull everything',
  anonymous: 'clients.anonymous: true',
  anonymousDefault: 'default (clients.anonymous not set, listener on loopback or no credentials configured)',
  safeDefault: 'safe default (clients.anonymous not set, listener not loopback): only registries without credentials',
} as const;

/** The detail of a refusal the safe default decided (no rule matched an anonymous client of `registry`). */
export function safeDefaultRefusal(registry: string): string {
  return (
    `safe default (listener not loopback, clients.anonymous and clients.access not set): anonymous clients may not pull ` +
    `through the credentials configured for ${registry}; log in, or allow them with clients.anonymous or clients.access`
  );
}

/**
 * True when the registry's `auth` names credentials in the config: every type but `anonymous` and
 * `auto`. `auto` is not counted: it finds credentials only at run time (env, docker config, cloud
 * metadata) and usually resolves to anonymous for public registries; give a registry an explicit
 * type (`docker-config`, `basic` …) to have the safe default protect it.
 */
export function hasConfiguredCredentials(registry: RegistryConfig): boolean {
  return registry.auth.type !== 'anonymous' && registry.auth.type !== 'auto';
}

/**
 * Resolves `clients.access`, `clients.anonymous` and the safe default into the ordered rules of one
 * server. `exposed` is whether the listener is reachable from other machines (default: its host is
 * not loopback); tests inject it.
 *
 * - `clients.access` present: its rules, in order; nothing else is added unless `anonymous: true`.
 * - `clients.access` absent: logged-in users (htpasswd, client certificates) may pull everything.
 * - `clients.anonymous: true`: `{ subjects: [anonymous], allow: ["**"] }` at the end.
 * - `clients.anonymous` unset and `clients.access` absent: anonymous clients may pull everything,
 *   except when exposed with credentials configured: then only registries without credentials.
 */
export function resolveAccess(config: Config, exposed = !isLoopback(config.listen.host)): ResolvedAccess {
  const { anonymous, access, groups } = config.clients;
  const rules: AccessRule[] = access !== undefined ? [...access] : [{ subjects: ['authenticated'], effect: 'allow', patterns: ['**'], origin: ORIGIN.users }];
  let safeDefault: ResolvedAccess['safeDefault'];
  if (anonymous === true) {
    rules.push({ subjects: ['anonymous'], effect: 'allow', patterns: ['**'], origin: ORIGIN.anonymous });
  } else if (anonymous === undefined && access === undefined) {
    const registries = [...config.registries.values()];
    const refused = registries.filter(hasConfiguredCredentials).map((r) => r.key);
    if (exposed && refused.length > 0) {
      safeDefault = { refused };
      const open = registries.filter((r) => !hasConfiguredCredentials(r)).map((r) => `${r.key}/**`);
      if (open.length > 0) rules.push({ subjects: ['anonymous'], effect: 'allow', patterns: open, origin: ORIGIN.safeDefault });
    } else {
      rules.push({ subjects: ['anonymous'], effect: 'allow', patterns: ['**'], origin: ORIGIN.anonymousDefault });
    }
  }
  return { rules, groups, safeDefault };
}

/** The AccessPolicy and the per-registry fetch filters of one server, built once in buildServices. */
export interface AccessControl {
  policy: AccessPolicy;
  /** Registry key → filter, only for registries with `repositories:`. */
  filters: Map<string, RepositoryFilter>;
  resolved: ResolvedAccess;
}

/** Builds the policy and filters for a config (per server instance: the policy's memo is its own). */
export function buildAccessControl(config: Config, exposed?: boolean): AccessControl {
  const resolved = resolveAccess(config, exposed);
  const filters = new Map<string, RepositoryFilter>();
  for (const [key, registry] of config.registries) {
    if (registry.repositories !== undefined) filters.set(key, new RepositoryFilter(key, registry.repositories));
  }
  return { policy: new AccessPolicy(resolved.rules, resolved.groups), filters, resolved };
}

/** The effective policy as a plain-text table for `pullgate config check`: one row per rule, in order. */
export function policyTable(config: Config, resolved: ResolvedAccess): string {
  const rows = resolved.rules.map((rule, i) => [String(i + 1), rule.effect, rule.subjects.join(', '), rule.patterns.join(', '), rule.origin]);
  rows.push(['-', 'deny', 'everyone', '(anything no rule above matched)', 'clients.access: nothing matching means deny']);
  const header = ['#', 'effect', 'subjects', 'repositories', 'from'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  const out = ['# access (first matching rule wins):', ...[header, ...rows].map((row) => `#   ${line(row)}`)];
  for (const [group, members] of resolved.groups) out.push(`#   group ${group}: ${members.join(', ')}`);
  for (const [key, registry] of config.registries) {
    const lists = registry.repositories;
    if (lists === undefined) continue;
    const parts = [lists.allow !== undefined ? `allow ${lists.allow.join(', ')}` : 'allow everything', ...(lists.deny?.length ? [`deny ${lists.deny.join(', ')}`] : [])];
    out.push(`#   the mirror fetches from ${key}: ${parts.join('; ')}`);
  }
  return `${out.join('\n')}\n`;
}
