/** Per-request facts for the access log line. */
export interface RequestFacts {
  endpoint: string;
  registry?: string;
  repository?: string;
  source?: string;
  bytes?: number;
  /** The authenticated user (never a password); undefined = anonymous. */
  user?: string | undefined;
  /** Why the request was refused before any upstream work, and the rule or registry policy that did it. */
  denied?: string;
  rule?: string;
}
