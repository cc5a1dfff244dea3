import { readFileSync } from 'node:fs';

/** pullgate's version, read once from package.json (two levels above src/core/ and dist/core/). */
export const VERSION: string = ((): string => {
  try {
    const parsed: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    return parsed && typeof parsed === 'object' && 'version' in parsed && typeof parsed.version === 'string' ? parsed.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** The User-Agent pullgate sends upstream. */
export const USER_AGENT = `pullgate/${VERSION}`;
