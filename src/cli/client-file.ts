/** What a file merged into an existing one on disk became, and a line saying what changed. */
export interface Merged {
  content: string;
  /** False when the existing file already said everything: it is left as it is. */
  changed: boolean;
  note: string;
}

/** One file of client-side mirror configuration. */
export interface ClientFile {
  /** Path relative to --out (and the heading when several files are printed). */
  path: string;
  /** Decides whether a heading comment may be printed before it: JSON has no comments. */
  syntax: 'json' | 'toml' | 'yaml' | 'pem';
  content: string;
  /** A drop-in directory that --out may already name: the file then goes straight into --out. */
  dropInDir?: string;
  /** Combines the file with the one on disk (undefined: none yet) instead of replacing it (daemon.json, hosts.toml). */
  mergeInto?: (existing: string | undefined) => Merged;
}
