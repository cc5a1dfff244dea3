import type { RepositoryLists } from '../config/config.js';
import { RepositoryPattern } from '../util/repository-pattern.js';

export type { RepositoryLists };


/** Why the mirror itself will not fetch a repository, or undefined when it may. */
export type FetchVerdict = string | undefined;

/**
 * What the mirror itself may fetch from one registry (`registries.<host>.repositories`): a name
 * must match an `allow` pattern when the list is given, and must match no `deny` pattern (deny wins).
 * Checked before any upstream request, so a refused name never leaves pullgate.
 */
export class RepositoryFilter {
  private readonly allow: RepositoryPattern[] | undefined;
  private readonly deny: RepositoryPattern[];

  constructor(
    private readonly registry: string,
    lists: RepositoryLists,
  ) {
    this.allow = lists.allow?.map((p) => new RepositoryPattern(p));
    this.deny = (lists.deny ?? []).map((p) => new RepositoryPattern(p));
  }

  /** Undefined when `repository` may be fetched; otherwise the reason, naming the pattern. */
  verdict(repository: string): FetchVerdict {
    const denied = this.deny.find((p) => p.matches(repository));
    if (denied !== undefined) return `registries.${this.registry}.repositories.deny has "${denied.text}"`;
    if (this.allow !== undefined && !this.allow.some((p) => p.matches(repository))) {
      return `registries.${this.registry}.repositories.allow does not list it`;
    }
    return undefined;
  }
}
