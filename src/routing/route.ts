import { Memo } from '../util/memo.js';
import type { Config } from '../config/config.js';
import { DOCKER_HUB, isDockerHubName } from '../core/docker-hub.js';
import { InvalidName, NoDefaultRegistry, RegistryNotConfigured } from '../core/errors.js';
import { assertRepositoryName } from './reference.js';

/** Where a client's repository name goes upstream. */
export interface Route {
  /** Key of the registry in the config. */
  registry: string;
  /** Repository name on that registry (`library/alpine`). */
  repository: string;
}

/** The subset of Config that routing reads. */
export type RoutingTable = Pick<Config, 'registries' | 'aliases' | 'defaultRegistry'>;

function hostLike(segment: string): boolean {
  return segment.includes('.') || segment.includes(':') || segment === 'localhost';
}

function canonical(table: RoutingTable, registry: string): string | undefined {
  const lower = registry.toLowerCase();
  if (table.registries.has(lower)) return lower;
  const alias = table.aliases.get(lower);
  if (alias !== undefined) return alias;
  if (isDockerHubName(lower) && table.registries.has(DOCKER_HUB)) return DOCKER_HUB;
  return undefined;
}

function finish(registry: string, repository: string): Route {
  const withLibrary = registry === DOCKER_HUB && !repository.includes('/') ? `library/${repository}` : repository;
  assertRepositoryName(withLibrary);
  return { registry, repository: withLibrary };
}

/**
 * Maps a client-side name to (registry, repository). First match wins:
 * `?ns=` → registry-key or alias prefix → defaultRegistry (`library/` for one-segment Hub names).
 * A registry that is not configured is refused, so no request leaves pullgate for it.
 */
export function route(table: RoutingTable, name: string, ns: string | undefined): Route {
  return resolve(table, name, ns);
}

const MEMO_SIZE = 10_000;

/**
 * `route()` for one server's table, remembering what it resolved (routing is pure; names repeat on
 * every layer of a pull). Created in buildServices, so the memo belongs to that server alone.
 */
export class Router {
  private readonly memo = new Memo<string, Route>(MEMO_SIZE);

  constructor(private readonly table: RoutingTable) {}

  route(name: string, ns: string | undefined): Route {
    const key = `${ns ?? ''}\n${name}`;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    const routed = resolve(this.table, name, ns);
    this.memo.set(key, routed);
    return routed;
  }
}

function resolve(table: RoutingTable, name: string, ns: string | undefined): Route {
  if (name.length === 0) throw new InvalidName('repository name is empty');
  if (ns !== undefined) {
    const registry = canonical(table, ns);
    if (registry === undefined) throw new RegistryNotConfigured(ns);
    return finish(registry, name);
  }
  const slash = name.indexOf('/');
  const first = slash === -1 ? name : name.slice(0, slash);
  const rest = slash === -1 ? '' : name.slice(slash + 1);
  const prefixed = canonical(table, first);
  if (prefixed !== undefined) {
    if (rest === '') throw new InvalidName(`"${name}" names a registry but no repository`);
    return finish(prefixed, rest);
  }
  if (slash !== -1 && hostLike(first)) throw new RegistryNotConfigured(first);
  if (table.defaultRegistry === undefined) throw new NoDefaultRegistry(name, [...table.registries.keys()]);
  return finish(table.defaultRegistry, name);
}
