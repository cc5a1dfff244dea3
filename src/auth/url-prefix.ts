/**
 * True when `target` lies under a configured URL prefix: the same origin (scheme, host, port) and
 * the prefix's path as whole segments, so `https://h/ok` admits `/ok` and `/ok/token` but not
 * `/okay/token`. With `wildcardHost`, a prefix host `*.example.com` admits any subdomain of it.
 */
export function withinUrlPrefix(target: URL, prefix: string, options: { wildcardHost?: boolean } = {}): boolean {
  let allowed: URL;
  try {
    allowed = new URL(prefix);
  } catch {
    return false;
  }
  if (allowed.username !== '' || allowed.password !== '') return false;
  if (!sameOrigin(target, allowed, options.wildcardHost === true)) return false;
  const base = allowed.pathname;
  if (base === '/' || base === '') return true;
  if (base.endsWith('/')) return target.pathname.startsWith(base);
  return target.pathname === base || target.pathname.startsWith(`${base}/`);
}

function sameOrigin(target: URL, allowed: URL, wildcardHost: boolean): boolean {
  if (!wildcardHost || !allowed.hostname.startsWith('*.')) return allowed.origin === target.origin;
  const suffix = allowed.hostname.slice(1); // ".example.com"
  return (
    allowed.protocol === target.protocol &&
    allowed.port === target.port &&
    target.hostname.length > suffix.length &&
    target.hostname.endsWith(suffix)
  );
}
