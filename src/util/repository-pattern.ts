/**
 * A repository pattern over `<registry key>/<repository>` path segments: `*` is exactly one segment,
 * `**` any number of segments (none included), and `*` inside a segment (`app-*`) any characters of
 * that segment. Matching is by whole segments, so `ghcr.io/org/*` never matches `ghcr.io/org-x/app`.
 */
export class RepositoryPattern {
  /** Per segment: a literal (or `*`, `**`), or a RegExp for a segment with `*` inside. */
  private readonly segments: (RegExp | string)[];

  constructor(readonly text: string) {
    this.segments = text.split('/').map((segment) => {
      if (segment === '**' || segment === '*') return segment;
      if (!segment.includes('*')) return segment;
      const body = segment
        .split('*')
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*');
      return new RegExp(`^${body}$`);
    });
  }

  /** True when `name` (`ghcr.io/org/app`) matches the pattern. */
  matches(name: string): boolean {
    return this.matchFrom(0, name.split('/'), 0);
  }

  private matchFrom(i: number, parts: string[], j: number): boolean {
    const segment = this.segments[i];
    if (segment === undefined) return j === parts.length;
    if (segment === '**') {
      for (let k = j; k <= parts.length; k++) if (this.matchFrom(i + 1, parts, k)) return true;
      return false;
    }
    const part = parts[j];
    if (part === undefined) return false;
    const ok = segment === '*' ? true : typeof segment === 'string' ? segment === part : segment.test(part);
    return ok && this.matchFrom(i + 1, parts, j + 1);
  }
}

/** Why a pattern text is not usable, or undefined when it is. */
export function patternProblem(text: string): string | undefined {
  if (text === '') return 'is empty';
  if (text.startsWith('/') || text.endsWith('/')) return 'must not start or end with "/"';
  if (text.split('/').some((segment) => segment === '')) return 'has an empty path segment';
  if (text.split('/').some((segment) => segment.includes('**') && segment !== '**')) return '"**" must be a whole path segment';
  return undefined;
}
