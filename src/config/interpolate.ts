/** Result of interpolating a parsed config document: the new value and the variables that were unset. */
export interface Interpolated {
  value: unknown;
  unset: string[];
}

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed YAML document (never in
 * the raw text, so a value cannot inject YAML). `$$` is a literal `$`. Unset variables without a
 * default become "" and are reported.
 */
export function interpolate(document: unknown, env: NodeJS.ProcessEnv): Interpolated {
  const unset = new Set<string>();
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') {
      return node.replace(REFERENCE, (whole: string, name: string | undefined, fallback: string | undefined) => {
        if (whole === '$$' || name === undefined) return '$';
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        unset.add(name);
        return '';
      });
    }
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value)]));
    }
    return node;
  };
  return { value: walk(document), unset: [...unset].sort() };
}
