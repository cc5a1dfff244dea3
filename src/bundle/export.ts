import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { parseImageRef } from '../doctor/image-ref.js';
import { describeError } from '../core/errors.js';
import { digestAlgorithm } from '../routing/reference.js';
import type { PlatformChoice } from '../warm/manifest-content.js';
import { ExportFailed, type ImagePlan, planImage } from './export-plan.js';
import { MirrorClient } from './mirror-client.js';
import { type BundleEntry, INDEX_FILE, LAYOUT_BYTES, LAYOUT_FILE, blobPath, indexJson } from './oci-layout.js';
import { TarWriter } from './tar-writer.js';

export { ExportFailed };

export interface ExportOptions {
  /** Base URL of the mirror the content comes through (it fetches and caches what it lacks). */
  mirror: string;
  authorization: string | undefined;
  platforms: PlatformChoice;
  /** Digests the far side holds: their blobs stay out of the tar (manifests still name them). */
  have: ReadonlySet<string>;
  timeoutMs: number;
  dispatcher: Dispatcher;
}

/** What an export shows while it runs. */
export interface ExportEvents {
  planned(image: string, plan: { platforms: number; manifests: number; blobs: number; leftOut: number; signatures: number }): void;
  /** Blob bytes written to the bundle so far, of `total` when every size was known. */
  progress(bytes: number, total: number | undefined): void;
  warning(image: string, text: string): void;
}

export interface ExportSummary {
  images: number;
  manifests: number;
  blobs: number;
  /** Blobs left out because the far side has them. */
  leftOut: number;
  /** Bytes of the tar (before compression). */
  bytes: number;
}

/**
 * Writes an OCI image layout tar of IMAGES to `out`, their content read through the mirror: first every
 * image's manifests (all of them, so an image that cannot be read fails the export before a blob is
 * written), then each blob streamed from the mirror into the tar and verified on the way. index.json names
 * each image by its reference as given, and each cosign tag attached to it.
 */
export async function exportBundle(images: readonly string[], out: Writable, options: ExportOptions, events: ExportEvents): Promise<ExportSummary> {
  const client = (name: string): MirrorClient => new MirrorClient(options.mirror, name, { authorization: options.authorization, dispatcher: options.dispatcher, timeoutMs: options.timeoutMs });
  const plans: ImagePlan[] = [];
  for (const image of images) {
    const plan = await planImage(image, client, options.platforms, (text) => events.warning(image, text));
    const blobs = [...plan.blobs.keys()];
    events.planned(image, {
      platforms: plan.platforms,
      manifests: plan.manifests.size,
      blobs: blobs.length,
      leftOut: blobs.filter((d) => options.have.has(d)).length,
      signatures: plan.entries.length - 1,
    });
    plans.push(plan);
  }
  const tar = new TarWriter(out);
  await tar.bytes(LAYOUT_FILE, LAYOUT_BYTES);
  await tar.directory('blobs');
  const written = new Set<string>();
  const directories = new Set<string>();
  const directoryOf = async (digest: string): Promise<void> => {
    const dir = blobPath(digest).slice(0, blobPath(digest).lastIndexOf('/'));
    if (directories.has(dir)) return;
    directories.add(dir);
    await tar.directory(dir);
  };
  const summary: ExportSummary = { images: plans.length, manifests: 0, blobs: 0, leftOut: 0, bytes: 0 };
  const toSend = new Map<string, number | undefined>();
  for (const plan of plans) for (const [digest, size] of plan.blobs) if (!options.have.has(digest)) toSend.set(digest, size);
  let total: number | undefined = 0;
  for (const size of toSend.values()) total = size === undefined || total === undefined ? undefined : total + size;
  let sent = 0;
  const entries: BundleEntry[] = [];
  for (const plan of plans) {
    for (const manifest of plan.manifests.values()) {
      if (written.has(manifest.digest)) continue;
      written.add(manifest.digest);
      await directoryOf(manifest.digest);
      await tar.bytes(blobPath(manifest.digest), manifest.bytes);
      summary.manifests += 1;
    }
    const name = plan.image;
    for (const digest of plan.blobs.keys()) {
      if (options.have.has(digest)) {
        summary.leftOut += written.has(digest) ? 0 : 1;
        written.add(digest);
        continue;
      }
      if (written.has(digest)) continue;
      written.add(digest);
      await directoryOf(digest);
      try {
        const { size, body } = await client(parseImageRef(name).name).blob(digest);
        const hash = createHash(digestAlgorithm(digest));
        try {
          await tar.file(blobPath(digest), size, body, (chunk) => {
            hash.update(chunk);
            sent += chunk.length;
            events.progress(sent, total);
          });
        } finally {
          body.destroy();
        }
        const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
        if (actual !== digest) throw new Error(`blob ${digest}: the mirror sent content with digest ${actual}`);
      } catch (err) {
        throw new ExportFailed(`${name}: ${describeError(err)}`);
      }
      summary.blobs += 1;
    }
    entries.push(...plan.entries);
  }
  await tar.bytes(INDEX_FILE, indexJson(entries));
  await tar.finish();
  summary.bytes = tar.written;
  return summary;
}
