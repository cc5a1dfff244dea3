/** A `${VAR}` that was unset (and had no default), with the config path of the value that used it. */
export interface UnsetReference {
  /** Dotted config path, e.g. `registries.ghcr.io.auth.password`; array items as `rktPaths[0]`. */
  path: string;
  variable: string;
}

/** Result of interpolating a parsed config document: the new value and the variables that were unset. */
export interface Interpolated {
  value: unknown;
  /** Names of the unset variables, sorted, each once. */
  unset: string[];
  /** Every use of an unset variable, in document order, with the config path it fed. */
  unsetAt: UnsetReference[];
}

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed YAML document (never in
 * the raw text, so a value cannot inject YAML). `$$` is a literal `$`. Unset variables without a
 * default become "" and are reported, with the config path of each use.
 */
export function interpolate(document: unknown, env: NodeJS.ProcessEnv): Interpolated {
  const unset = new Set<string>();
  const unsetAt: UnsetReference[] = [];
  const walk = (node: unknown, at: string): unknown => {
    if (typeof node === 'string') {
      return node.replace(REFERENCE, (whole: string, name: string | undefined, fallback: string | undefined) => {
        if (whole === '$$' || name === undefined) return '$';
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        unset.add(name);
        unsetAt.push({ path: at, variable: name });
        return '';
      });
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, `${at}[${index}]`));
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value, at === '' ? key : `${at}.${key}`)]));
    }
    return node;
  };
  return { value: walk(document, ''), unset: [...unset].sort(), unsetAt };
}
