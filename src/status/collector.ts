import type { Cache } from '../cache/cache.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/config.js';
import type { RegistrySeen, RegistryWatch } from '../upstream/registry-watch.js';
import type { RecentEvents } from '../util/recent-events.js';
import { VERSION } from '../core/version.js';
import type { PullsInProgress } from './counting-services.js';
import { buildReport, type HostFacts, type ProcessFacts, type StatusReport } from './status-report.js';
import type { Traffic } from './traffic.js';

/** What the collector reads; each piece belongs to the process's services (nothing at module level). */
export interface StatusSources {
  config: Config;
  clock: Clock;
  cache: Pick<Cache, 'index' | 'sizeBytes' | 'maxSizeBytes'>;
  watch: RegistryWatch;
  recent: RecentEvents;
  traffic: Traffic;
  pulls: PullsInProgress;
  /** The cluster's members, when `cluster:` is configured. */
  cluster?: { readonly self: string; members(): string[]; live(): string[] } | undefined;
}

/** The members and which are live; null before the membership has started. */
function clusterFacts(cluster: NonNullable<StatusSources['cluster']>): HostFacts['cluster'] {
  try {
    const live = new Set(cluster.live());
    return { self: cluster.self, members: cluster.members().map((id) => ({ id, live: live.has(id) })) };
  } catch {
    return null;
  }
}

/** Every process's facts on this host: a worker asks the primary, which asks every worker (cli/worker-status.ts). */
export type GatherParts = (own: ProcessFacts) => Promise<ProcessFacts[]>;

/**
 * Collects the status page's facts: this process's own (traffic, pulls in progress, what the
 * registries answered, recent refusals and errors) and the host's (cache figures from the index's
 * usage row: one row read whatever the index's size), and builds the report for `/api/status` and `/`.
 */
export class StatusCollector {
  readonly startedAt: number;
  private gather: GatherParts = (own) => Promise.resolve([own]);

  /** `main`, or `worker-<index>` under `serve --workers`. */
  private id = 'main';

  constructor(private readonly sources: StatusSources) {
    this.startedAt = sources.clock.now();
  }

  /** Under `serve --workers`: this worker's name, and how to reach every worker's facts. */
  joinHost(id: string, gather: GatherParts): void {
    this.id = id;
    this.gather = gather;
  }

  processFacts(): ProcessFacts {
    const registries: Record<string, RegistrySeen> = {};
    for (const key of this.sources.config.registries.keys()) {
      const seen = this.sources.watch.get(key);
      if (seen !== undefined) registries[key] = { ...seen };
    }
    return {
      id: this.id,
      pid: process.pid,
      startedAt: this.startedAt,
      traffic: this.sources.traffic.facts(),
      pulls: this.sources.pulls.list(),
      registries,
      recent: this.sources.recent.list(),
    };
  }

  hostFacts(): HostFacts {
    const { cache, config, cluster } = this.sources;
    let figures: HostFacts['cache'];
    try {
      // The usage row (kept by triggers) and the access-time bounds through their index: no scan at any size.
      const summary = cache.index.summary();
      figures = { bytes: summary.bytes, maxBytes: cache.maxSizeBytes, blobs: summary.blobs, manifests: summary.manifests, tags: cache.index.tagCount() };
    } catch {
      // An index that cannot be read (storage failing, closing): the last size read, counts unknown.
      figures = { bytes: cache.sizeBytes, maxBytes: cache.maxSizeBytes, blobs: 0, manifests: 0, tags: 0 };
    }
    const s3 = config.storage.s3;
    return {
      cache: figures,
      shared: s3 === undefined ? null : { bucket: s3.bucket, endpoint: s3.endpoint },
      cluster: cluster === undefined ? null : clusterFacts(cluster),
    };
  }

  /** The host's report: this process's facts, every worker's under `serve --workers`. */
  async report(): Promise<StatusReport> {
    const parts = await this.gather(this.processFacts());
    return buildReport(this.sources.config, this.hostFacts(), parts, this.sources.clock.now(), VERSION);
  }
}
