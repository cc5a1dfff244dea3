import type { BackgroundWork } from './background-work.js';
import type { Pins } from './pins.js';
import type { SharedTier } from './shared-tier.js';

/** A repository upstream confirmed may see a digest. */
export interface ConfirmedLink {
  registry: string;
  repository: string;
}

/**
 * What the cache sends to the shared store behind the local disk, in the background: blobs just stored
 * locally (pinned while they upload), manifests, and the links upstream confirmed. Does nothing without one.
 */
export class SharedCopies {
  constructor(
    readonly tier: SharedTier | undefined,
    private readonly pins: Pins,
    private readonly background: BackgroundWork,
  ) {}

  /** Uploads a blob just stored locally (pinned meanwhile) and then its links; `afterwards` runs once it settled. */
  uploadBlob(digest: string, file: string, size: number, links: readonly ConfirmedLink[], afterwards?: () => void): void {
    const shared = this.tier;
    if (shared === undefined) return;
    this.pins.pin(digest);
    this.background.track(
      shared
        .upload(digest, file, size)
        .then(async (stored) => {
          if (stored) for (const link of links) await shared.link(link.registry, link.repository, digest);
        })
        .finally(() => {
          this.pins.unpin(digest);
          afterwards?.();
        }),
    );
  }

  /** Uploads a verified manifest and then its link. */
  uploadManifest(digest: string, bytes: Buffer, registry: string, repository: string): void {
    const shared = this.tier;
    if (shared === undefined) return;
    this.background.track(
      shared.uploadBytes(digest, bytes).then(async (stored) => {
        if (stored) await shared.link(registry, repository, digest);
      }),
    );
  }

  /** Records links upstream confirmed for a digest the shared store holds already. */
  recordLinks(links: readonly ConfirmedLink[], digest: string): void {
    const shared = this.tier;
    if (shared === undefined) return;
    for (const link of links) this.background.track(shared.link(link.registry, link.repository, digest));
  }
}
