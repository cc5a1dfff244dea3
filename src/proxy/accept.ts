/** Answers for (Accept, media type) pairs already seen: clients send the same few Accept headers. */
const decided = new Map<string, boolean>();
const MAX_DECIDED = 1000;

/** True when a client's Accept header allows `mediaType` (absent Accept and wildcards allow all). */
export function accepts(accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  const key = `${mediaType}\n${accept}`;
  const known = decided.get(key);
  if (known !== undefined) return known;
  const answer = decide(accept, mediaType);
  if (decided.size >= MAX_DECIDED) decided.clear();
  decided.set(key, answer);
  return answer;
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
