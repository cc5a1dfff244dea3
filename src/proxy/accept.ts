const MAX_DECIDED = 1000;

/**
 * Answers per Accept header, then per media type (clients send the same few Accept headers), for one
 * server: created with the manifest service, never shared between servers through a module.
 */
export class AcceptDecisions {
  private readonly decided = new Map<string, Map<string, boolean>>();

  /** True when a client's Accept header allows `mediaType` (absent Accept and wildcards allow all). */
  accepts(accept: string | undefined, mediaType: string): boolean {
    if (accept === undefined) return true;
    let byType = this.decided.get(accept);
    if (byType === undefined) {
      if (this.decided.size >= MAX_DECIDED) this.decided.clear();
      byType = new Map();
      this.decided.set(accept, byType);
    }
    const known = byType.get(mediaType);
    if (known !== undefined) return known;
    const answer = accepts(accept, mediaType);
    byType.set(mediaType, answer);
    return answer;
  }
}

/** True when a client's Accept header allows `mediaType` (absent Accept and wildcards allow all); not remembered. */
export function accepts(accept: string | undefined, mediaType: string): boolean {
  return accept === undefined || accept.trim() === '' || decide(accept, mediaType);
}

function decide(accept: string, mediaType: string): boolean {
  const [type = ''] = mediaType.split('/');
  return accept.split(',').some((part) => {
    const value = part.split(';')[0]?.trim().toLowerCase() ?? '';
    return value === '*/*' || value === mediaType.toLowerCase() || value === `${type}/*`;
  });
}

/** The union of the client's Accept and pullgate's default list, so cached tag answers suit every client. */
export function widenAccept(accept: string | undefined, defaults: string): string {
  if (accept === undefined || accept.trim() === '') return defaults;
  const seen = new Set<string>();
  const out: string[] = [];
  for (const part of [...accept.split(','), ...defaults.split(',')]) {
    const value = part.trim();
    const key = value.split(';')[0]?.trim().toLowerCase() ?? '';
    if (value !== '' && !seen.has(key)) {
      seen.add(key);
      out.push(value);
    }
  }
  return out.join(', ');
}
