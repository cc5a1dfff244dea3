// A synthetic cache generated straight into pullgate's SQLite index (issue 14 §4): N blob rows, N/5 tags over
// N/500 repositories, a link per row, and the manifests' bytes on disk (a tag hit reads them); the layer blobs
// exist only as rows, which is all start-up, `cache stats` and tag hits need.
//
// The one file to update when the cache's schema or layout changes: the schema itself comes from pullgate's own
// migrations (openDatabase), but the INSERT column lists and the content path below mirror
//   src/storage/database.ts (tables blobs, links, tags)
//   src/storage/fs-store.ts (files at <root>/blobs/<algorithm>/<first 2 hex>/<hex>; index at <root>/index.db)
import { createHash } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/database.js';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../support/oci-layout.js';

export interface SyntheticIndexSpec {
  /** Rows in `blobs` (layers and manifests together). */
  rows: number;
  /** Registry key the rows belong to (pullgate's config must name it). */
  registry: string;
  /** validated_at of every tag and the access times (ms since the epoch). */
  now: number;
  /** Layers (the least recently used first) that also get their bytes on disk, for an eviction pass to delete (default 0). */
  layerFiles?: number;
}

export interface SyntheticIndex {
  root: string;
  registry: string;
  rows: number;
  manifests: number;
  tags: number;
  repositories: number;
  /** The path of tag `t` under /v2/ (for wrk's script: `growth/r<t % repositories>/manifests/t<t>`). */
  tagPath(t: number): string;
  /** The digest tag 0 resolves to (checked before the figures). */
  firstTagDigest: string;
  indexBytes: number;
  /** Sum of the sizes of every row (what pullgate counts against storage.maxSize). */
  totalBytes: number;
  /** Sum of the sizes of the `n` least recently used layers. */
  oldestLayerBytes(n: number): number;
  seconds: number;
}

const LAYERS_PER_MANIFEST = 3;

/** 1–10 kB each: a million rows stay far below the default 20 GiB budget, so start-up evicts nothing. */
const layerSize = (i: number): number => 1_000 + ((i * 7_919) % 9_000);

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where a content file lives in the filesystem store. */
function contentPath(root: string, hex: string): string {
  return join(root, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** How many tags, repositories and manifests an index of `rows` rows gets. */
export function syntheticShape(rows: number): Pick<SyntheticIndex, 'rows' | 'tags' | 'repositories' | 'manifests'> {
  const tags = Math.max(1, Math.round(rows / 5));
  const repositories = Math.max(1, Math.round(tags / 100));
  // About one manifest per ten tags, a multiple of the repositories, so tag t and its manifest share repository t % R.
  const manifests = Math.min(rows - 1, repositories * Math.max(1, Math.round(tags / 10 / repositories)));
  return { rows, tags, repositories, manifests };
}

/** Writes index.db (and the manifests' files) for `spec` into `root`, which must be empty. */
export function generateSyntheticIndex(root: string, spec: SyntheticIndexSpec): SyntheticIndex {
  const started = performance.now();
  const { tags, repositories, manifests } = syntheticShape(spec.rows);
  const layers = spec.rows - manifests;
  const layerDigest = (i: number): string => `sha256:${sha256(`synthetic-layer-${i}`)}`;
  const repo = (i: number): string => `growth/r${i % repositories}`;

  mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
  const db = openDatabase(join(root, 'index.db'));
  db.pragma('synchronous = OFF');
  const putBlob = db.prepare('INSERT INTO blobs (digest, size, kind, media_type, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?)');
  const putLink = db.prepare('INSERT OR IGNORE INTO links (registry, repository, digest) VALUES (?, ?, ?)');
  const putTag = db.prepare('INSERT INTO tags (registry, repository, tag, digest, media_type, validated_at) VALUES (?, ?, ?, ?, ?, ?)');
  const manifestDigests: string[] = [];
  let totalBytes = 0;
  const filler = Buffer.alloc(10_000, 0x5a);
  db.transaction(() => {
    for (let i = 0; i < layers; i += 1) {
      const digest = layerDigest(i);
      totalBytes += layerSize(i);
      // The bytes are not the digest's (nothing reads them back); an eviction only deletes them.
      if (i < (spec.layerFiles ?? 0)) {
        const file = contentPath(root, digest.slice('sha256:'.length));
        mkdirSync(join(file, '..'), { recursive: true });
        writeFileSync(file, filler.subarray(0, layerSize(i)));
      }
      putBlob.run(digest, layerSize(i), 'blob', OCI_LAYER_GZIP, spec.now - (layers - i) * 1_000, spec.now - (layers - i) * 1_000);
      putLink.run(spec.registry, repo(i), digest);
    }
    for (let m = 0; m < manifests; m += 1) {
      const layer = (k: number): { mediaType: string; digest: string; size: number } => {
        const i = (m * LAYERS_PER_MANIFEST + k) % layers;
        return { mediaType: OCI_LAYER_GZIP, digest: layerDigest(i), size: layerSize(i) };
      };
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: OCI_CONFIG, digest: `sha256:${sha256(`synthetic-config-${m}`)}`, size: 1_024 },
          layers: Array.from({ length: LAYERS_PER_MANIFEST }, (_, k) => layer(k)),
        }),
      );
      const hex = sha256(bytes);
      const file = contentPath(root, hex);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, bytes);
      manifestDigests.push(`sha256:${hex}`);
      totalBytes += bytes.length;
      putBlob.run(`sha256:${hex}`, bytes.length, 'manifest', OCI_MANIFEST, spec.now, spec.now);
      putLink.run(spec.registry, repo(m), `sha256:${hex}`);
    }
    for (let t = 0; t < tags; t += 1) {
      putTag.run(spec.registry, repo(t), `t${t}`, manifestDigests[t % manifests] ?? '', OCI_MANIFEST, spec.now);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return {
    root,
    registry: spec.registry,
    rows: spec.rows,
    manifests,
    tags,
    repositories,
    tagPath: (t) => `/v2/${repo(t)}/manifests/t${t}`,
    firstTagDigest: manifestDigests[0] ?? '',
    indexBytes: statSync(join(root, 'index.db')).size,
    totalBytes,
    oldestLayerBytes: (n) => {
      let sum = 0;
      for (let i = 0; i < Math.min(n, layers); i += 1) sum += layerSize(i);
      return sum;
    },
    seconds: (performance.now() - started) / 1000,
  };
}
