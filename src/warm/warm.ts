import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { type ImageRef, parseImageRef } from '../doctor/image-ref.js';
import { describeError } from '../core/errors.js';
import { digestOf } from '../proxy/digest.js';
import { DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from '../proxy/manifests.js';
import { digestAlgorithm } from '../routing/reference.js';
import { type HttpResponse, drain, header, readBody, send, upstreamErrorMessage } from '../upstream/http.js';
import { type BlobRef, type ImageContent, type IndexEntry, type ManifestContent, type Platform, type PlatformChoice, chooseEntries, configPlatform, manifestContent, platformMatches, platformText } from './manifest-content.js';

/** Indexes nested deeper than this are refused (real images nest at most once). */
const MAX_INDEX_DEPTH = 4;

/** Where and how to warm: the mirror's base URL and what to ask it for. */
export interface WarmTarget {
  /** Base URL of a running mirror, e.g. `http://127.0.0.1:5000`. */
  mirror: string;
  /** Authorization header for a mirror that requires client credentials. */
  authorization: string | undefined;
  platforms: PlatformChoice;
  /** Longest wait for response headers and between body chunks. */
  timeoutMs: number;
  /** Blobs downloaded at once. */
  parallel: number;
  /**
   * True when the platforms were asked for (`--platform`): a single-platform image of another platform
   * then fails, with nothing fetched but its manifest and config. Otherwise (this machine's platform by
   * default) such an image is warmed with a warning.
   */
  strictPlatform?: boolean;
}

export interface WarmDeps {
  dispatcher: Dispatcher;
  /** Milliseconds, for durations (injected so tests need no real time). */
  now: () => number;
}

/** What happens while an image is warmed, for the progress display. */
export interface WarmEvents {
  planned(image: string, plan: { platforms: string[]; manifests: number; blobs: number; bytes: number | undefined; skipped: string[] }): void;
  /** Bytes of this image's blobs received so far. */
  progress(image: string, bytes: number): void;
  blob(image: string, digest: string, bytes: number): void;
  /** Something the operator should know that does not fail the image (a platform that did not match). */
  warning(image: string, text: string): void;
}

export interface WarmSummary {
  image: string;
  platforms: string[];
  manifests: number;
  blobs: number;
  bytes: number;
  ms: number;
}

/** An image could not be warmed; the message says which request failed and what the mirror answered. */
export class WarmFailed extends Error {}

interface FetchedManifest {
  body: Buffer;
  contentType: string | undefined;
}

/** One image behind the mirror: its manifests and blobs fetched through it, so the mirror caches them. */
class ImageWarmer {
  private readonly ref: ImageRef;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private manifests = 0;

  constructor(
    private readonly image: string,
    private readonly target: WarmTarget,
    private readonly deps: WarmDeps,
    private readonly events: WarmEvents,
  ) {
    this.ref = parseImageRef(image);
    this.base = `${target.mirror.replace(/\/+$/, '')}/v2/${this.ref.name}`;
    this.headers = target.authorization === undefined ? {} : { authorization: target.authorization };
  }

  async run(): Promise<WarmSummary> {
    const started = this.deps.now();
    const images = await this.collect(this.ref.reference, undefined, 0);
    const single = images.length === 1 ? images[0] : undefined;
    if (single !== undefined && single.platform === undefined && single.content.config !== undefined && this.target.platforms !== 'all') {
      single.platform = await this.checkPlatform(single.content.config, this.target.platforms);
    }
    const byDigest = new Map<string, BlobRef>();
    const skipped = new Set<string>();
    for (const { content } of images) {
      for (const blob of content.blobs) byDigest.set(blob.digest, blob);
      for (const digest of content.skipped) skipped.add(digest);
    }
    const blobs = [...byDigest.values()];
    const sizes = blobs.map((b) => b.size).filter((s): s is number => s !== undefined);
    const platforms = images.map((i) => platformText(i.platform)).filter((p) => p !== 'unknown platform');
    this.events.planned(this.image, {
      platforms,
      manifests: this.manifests,
      blobs: blobs.length,
      bytes: sizes.length === blobs.length ? sizes.reduce((a, b) => a + b, 0) : undefined,
      skipped: [...skipped],
    });
    const bytes = await this.fetchBlobs(blobs);
    return { image: this.image, platforms, manifests: this.manifests, blobs: blobs.length, bytes, ms: this.deps.now() - started };
  }

  /**
   * The platform a single-platform image's config names, checked against the platforms wanted: a
   * mismatch fails the image when they were asked for (strictPlatform), else it is a warning.
   */
  private async checkPlatform(config: string, wanted: readonly Platform[]): Promise<Platform | undefined> {
    const what = `config ${config}`;
    const response = await this.get(`/blobs/${config}`, what, {});
    let body: Buffer;
    try {
      body = await readBody(response.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw new WarmFailed(`${what}: ${describeError(err)}`);
    }
    if (digestOf(body, config) !== config) throw new WarmFailed(`${what}: the mirror sent content with digest ${digestOf(body, config)}`);
    const platform = configPlatform(body);
    if (platform === undefined || wanted.some((w) => platformMatches(platform, w))) return platform;
    const mismatch = `a single-platform ${platformText(platform)} image, not ${wanted.map(platformText).join(', ')}`;
    if (this.target.strictPlatform === true) {
      throw new WarmFailed(`${this.image} is ${mismatch}: nothing warmed (--platform ${platformText(platform)} or --platform all warms it)`);
    }
    this.events.warning(this.image, `${mismatch} (this machine's platform); warming it anyway`);
    return platform;
  }

  /** The image manifests under `reference`, following index entries of the chosen platforms. */
  private async collect(reference: string, platform: Platform | undefined, depth: number): Promise<{ platform: Platform | undefined; content: ImageContent }[]> {
    const fetched = await this.fetchManifest(reference);
    let content: ManifestContent;
    try {
      content = manifestContent(fetched.body, fetched.contentType);
    } catch (err) {
      throw new WarmFailed(`manifest ${reference}: ${describeError(err)}`);
    }
    if (content.kind === 'image') return [{ platform, content }];
    if (depth >= MAX_INDEX_DEPTH) throw new WarmFailed(`manifest ${reference}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    let entries: IndexEntry[];
    try {
      entries = chooseEntries(content.entries, depth === 0 ? this.target.platforms : 'all');
    } catch (err) {
      throw new WarmFailed(`${this.image}: ${describeError(err)}`);
    }
    const found: { platform: Platform | undefined; content: ImageContent }[] = [];
    for (const entry of entries) found.push(...(await this.collect(entry.digest, entry.platform ?? platform, depth + 1)));
    return found;
  }

  private async fetchManifest(reference: string): Promise<FetchedManifest> {
    const what = `manifest ${reference}`;
    const response = await this.get(`/manifests/${reference}`, what, { accept: DEFAULT_MANIFEST_ACCEPT });
    let body: Buffer;
    try {
      body = await readBody(response.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw new WarmFailed(`${what}: ${describeError(err)}`);
    }
    if (reference.includes(':') && digestOf(body, reference) !== reference) {
      throw new WarmFailed(`${what}: the mirror sent content with digest ${digestOf(body, reference)}`);
    }
    this.manifests += 1;
    return { body, contentType: header(response.headers, 'content-type')?.split(';')[0]?.trim() };
  }

  /** Downloads every blob (at most `parallel` at once), verifying each; returns the bytes received. */
  private async fetchBlobs(blobs: readonly BlobRef[]): Promise<number> {
    let next = 0;
    let total = 0;
    let failure: Error | undefined;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < blobs.length) {
        const blob = blobs[next++];
        if (blob === undefined) break;
        try {
          const bytes = await this.fetchBlob(blob.digest, (n) => {
            total += n;
            this.events.progress(this.image, total);
          });
          this.events.blob(this.image, blob.digest, bytes);
        } catch (err) {
          failure ??= err instanceof Error ? err : new WarmFailed(String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.target.parallel, blobs.length)) }, worker));
    if (failure !== undefined) throw failure;
    return total;
  }

  private async fetchBlob(digest: string, received: (bytes: number) => void): Promise<number> {
    const what = `blob ${digest}`;
    const response = await this.get(`/blobs/${digest}`, what, {});
    const hash = createHash(digestAlgorithm(digest));
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        hash.update(buffer);
        bytes += buffer.length;
        received(buffer.length);
      }
    } catch (err) {
      throw new WarmFailed(`${what}: the download broke off after ${bytes} bytes: ${describeError(err)}`);
    }
    const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
    if (actual !== digest) throw new WarmFailed(`${what}: the mirror sent ${bytes} bytes with digest ${actual}`);
    return bytes;
  }

  /** GET through the mirror; anything but a 200 becomes a WarmFailed with the mirror's error. */
  private async get(path: string, what: string, headers: Record<string, string>): Promise<HttpResponse> {
    let response: HttpResponse;
    try {
      response = await send(`${this.base}${path}`, {
        method: 'GET',
        headers: { ...this.headers, ...headers },
        dispatcher: this.deps.dispatcher,
        timeoutMs: this.target.timeoutMs,
      });
    } catch (err) {
      throw new WarmFailed(`${what}: ${describeError(err)}`);
    }
    if (response.status === 200) return response;
    const error = await upstreamErrorMessage(response.body);
    drain(response.body);
    const said = [error.code, error.message].filter((part) => part !== undefined).join(': ');
    throw new WarmFailed(`${what}: the mirror answered ${response.status}${said === '' ? '' : ` ${said}`}`);
  }
}

/** Fetches IMAGE's manifests (the chosen platforms of an index) and all their blobs through the mirror. */
export function warmImage(image: string, target: WarmTarget, deps: WarmDeps, events: WarmEvents): Promise<WarmSummary> {
  return new ImageWarmer(image, target, deps, events).run();
}
