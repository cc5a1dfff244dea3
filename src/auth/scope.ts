/** A parsed token scope (`repository:library/alpine:pull`); `raw` keeps scopes outside the grammar. */
export interface Scope {
  type: string;
  name: string;
  actions: string[];
  raw: string;
}

/** The only scope pullgate ever asks for on a repository: pull. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/**
 * Parses `type[(class)]:name:action[,action]`. The name may contain `host:port`, so the actions
 * are read after the last colon. Returns undefined for scopes outside the grammar (`aws`).
 */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first || last === text.length - 1) return undefined;
  const type = text.slice(0, first).replace(/\(.*\)$/, '');
  const name = text.slice(first + 1, last);
  if (name === '') return undefined;
  return { type, name, actions: text.slice(last + 1).split(','), raw: text };
}

/** Splits a challenge's space-separated `scope` parameter. */
export function splitScopes(value: string | undefined): string[] {
  return (value ?? '').split(' ').filter((scope) => scope !== '');
}
