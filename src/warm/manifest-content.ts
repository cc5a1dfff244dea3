/**
 * What `pullgate warm` reads out of a manifest: the platform entries of an index (OCI image index,
 * Docker manifest list) and the blobs an image manifest needs (config and layers, OCI or Docker
 * schema 2; the layers of a schema 1 manifest). Pure functions over parsed JSON.
 */

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface IndexEntry {
  digest: string;
  mediaType: string | undefined;
  platform: Platform | undefined;
}

export interface BlobRef {
  digest: string;
  size: number | undefined;
}

export interface IndexContent {
  kind: 'index';
  entries: IndexEntry[];
}

export interface ImageContent {
  kind: 'image';
  blobs: BlobRef[];
  /** The config blob's digest (it names the image's platform); none in a schema 1 manifest. */
  config: string | undefined;
  /** Foreign layers (fetched by clients from their `urls`, not from a registry). */
  skipped: string[];
}

export type ManifestContent = IndexContent | ImageContent;

/** `all`, or the platforms asked for (`os/arch[/variant]`). */
export type PlatformChoice = 'all' | Platform[];

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function descriptor(value: unknown, where: string): { digest: string; size: number | undefined; mediaType: string | undefined; raw: Record<string, unknown> } {
  const raw = record(value);
  const digest = text(raw?.digest);
  if (raw === undefined || digest === undefined) throw new Error(`${where} has no digest`);
  return { digest, size: typeof raw.size === 'number' ? raw.size : undefined, mediaType: text(raw.mediaType), raw };
}

/** Parses a manifest body; throws a one-line reason for anything that is not a manifest warm understands. */
export function manifestContent(body: Buffer, contentType: string | undefined): ManifestContent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error('the manifest is not JSON');
  }
  const doc = record(parsed);
  if (doc === undefined) throw new Error('the manifest is not a JSON object');
  if (Array.isArray(doc.manifests)) {
    return {
      kind: 'index',
      entries: doc.manifests.map((entry, i) => {
        const d = descriptor(entry, `manifests[${i}]`);
        const p = record(d.raw.platform);
        const os = text(p?.os);
        const architecture = text(p?.architecture);
        const variant = text(p?.variant);
        const platform = os !== undefined && architecture !== undefined ? { os, architecture, ...(variant === undefined ? {} : { variant }) } : undefined;
        return { digest: d.digest, mediaType: d.mediaType, platform };
      }),
    };
  }
  if (doc.schemaVersion === 1 || contentType?.startsWith('application/vnd.docker.distribution.manifest.v1') === true) {
    const layers = Array.isArray(doc.fsLayers) ? doc.fsLayers : [];
    const digests = layers.map((layer, i) => {
      const digest = text(record(layer)?.blobSum);
      if (digest === undefined) throw new Error(`fsLayers[${i}] has no blobSum`);
      return digest;
    });
    return { kind: 'image', blobs: [...new Set(digests)].map((digest) => ({ digest, size: undefined })), config: undefined, skipped: [] };
  }
  if (!Array.isArray(doc.layers) && doc.config === undefined) throw new Error('the manifest has neither manifests, layers nor a config');
  const blobs: BlobRef[] = [];
  const skipped: string[] = [];
  let config: string | undefined;
  if (doc.config !== undefined) {
    const described = descriptor(doc.config, 'config');
    blobs.push({ digest: described.digest, size: described.size });
    config = described.digest;
  }
  (Array.isArray(doc.layers) ? doc.layers : []).forEach((layer, i) => {
    const d = descriptor(layer, `layers[${i}]`);
    // Foreign (non-distributable) layers live at their `urls`, not in the registry: nothing to cache.
    if (Array.isArray(d.raw.urls) && d.raw.urls.length > 0) skipped.push(d.digest);
    else blobs.push({ digest: d.digest, size: d.size });
  });
  const unique = new Map(blobs.map((b) => [b.digest, b]));
  return { kind: 'image', blobs: [...unique.values()], config, skipped };
}

/** Parses `all` or a comma-separated list of `os/arch[/variant]`. */
export function parsePlatforms(value: string): PlatformChoice {
  if (value.trim() === 'all') return 'all';
  return value.split(',').map((item) => {
    const parts = item.trim().split('/');
    const [os, architecture, variant] = parts;
    if (parts.length < 2 || parts.length > 3 || !os || !architecture || variant === '') {
      throw new Error(`--platform: "${item.trim()}" is not os/arch[/variant] (for example linux/amd64, linux/arm/v7) or all`);
    }
    return { os, architecture, ...(variant === undefined ? {} : { variant }) };
  });
}

/** The platform of this machine in OCI terms (Node's x64 is amd64, ia32 is 386). */
export function hostPlatform(arch: string = process.arch): Platform {
  const architecture: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return { os: 'linux', architecture: architecture[arch] ?? arch };
}

/**
 * The platform an image config names (`os`, `architecture`, `variant`); undefined when the config is not
 * JSON or names none (a Helm chart, another artifact), so nothing can be said about its platform.
 */
export function configPlatform(body: Buffer): Platform | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const doc = record(parsed);
  const os = text(doc?.os);
  const architecture = text(doc?.architecture);
  const variant = text(doc?.variant);
  if (os === undefined || architecture === undefined) return undefined;
  return { os, architecture, ...(variant === undefined ? {} : { variant }) };
}

/** True when `p` is the platform `wanted` names (any variant when `wanted` names none). */
export function platformMatches(p: Platform, wanted: Platform): boolean {
  return p.os === wanted.os && p.architecture === wanted.architecture && (wanted.variant === undefined || p.variant === wanted.variant);
}

/** How many platforms a summary line names before it only counts the rest. */
const PLATFORMS_SHOWN = 4;

/**
 * A list of platforms short enough for one line: all of them when there are a few, else the count,
 * the first few and how many more (a 500-entry index is one short line, not 6 KB).
 */
export function platformSummary(platforms: readonly string[]): string {
  const distinct = [...new Set(platforms)];
  if (distinct.length <= PLATFORMS_SHOWN + 1) return distinct.join(', ');
  return `${distinct.length} platforms: ${distinct.slice(0, PLATFORMS_SHOWN).join(', ')} and ${distinct.length - PLATFORMS_SHOWN} more`;
}

export function platformText(p: Platform | undefined): string {
  if (p === undefined) return 'unknown platform';
  return [p.os, p.architecture, p.variant].filter((part) => part !== undefined).join('/');
}

/**
 * The entries of an index to warm. `all` takes every entry (attestations included: a registry asked
 * for the image by digest serves them too); a list takes the entries of those platforms, a variant
 * matching any variant when none was asked for. Throws when a wanted platform has no entry.
 */
export function chooseEntries(entries: readonly IndexEntry[], choice: PlatformChoice): IndexEntry[] {
  if (choice === 'all') return [...entries];
  const chosen: IndexEntry[] = [];
  for (const wanted of choice) {
    const matches = entries.filter((e) => e.platform !== undefined && platformMatches(e.platform, wanted));
    if (matches.length === 0) {
      const offered = entries.map((e) => platformText(e.platform)).filter((p) => p !== 'unknown/unknown');
      throw new Error(`no ${platformText(wanted)} manifest in this index (it has ${platformSummary(offered) || 'no platform entries'})`);
    }
    for (const m of matches) if (!chosen.includes(m)) chosen.push(m);
  }
  return chosen;
}
