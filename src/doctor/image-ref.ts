/** An image reference as users type it: `[registry/]name[:tag|@digest]`, split but not yet routed. */
export interface ImageRef {
  /** Everything before the tag or digest (`ghcr.io/org/app`, `alpine`). */
  name: string;
  /** The tag or digest; `latest` when neither is given. */
  reference: string;
}

/** Splits `[registry/]name[:tag|@digest]`; a `:` before the last `/` is a registry port, not a tag. */
export function parseImageRef(image: string): ImageRef {
  const trimmed = image.trim();
  const at = trimmed.indexOf('@');
  if (at !== -1) {
    const before = trimmed.slice(0, at);
    const lastSlash = before.lastIndexOf('/');
    const colon = before.lastIndexOf(':');
    // `name:tag@digest`: the digest wins, as in docker.
    const name = colon > lastSlash ? before.slice(0, colon) : before;
    return { name, reference: trimmed.slice(at + 1) };
  }
  const lastSlash = trimmed.lastIndexOf('/');
  const colon = trimmed.lastIndexOf(':');
  if (colon > lastSlash) return { name: trimmed.slice(0, colon), reference: trimmed.slice(colon + 1) };
  return { name: trimmed, reference: 'latest' };
}
