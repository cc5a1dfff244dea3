import type { Cache } from '../cache/cache.js';
import type { Services } from '../http/services.js';
import type { BlobAnswer } from '../proxy/types.js';
import type { Traffic } from './traffic.js';

/** A blob being fetched from upstream into the cache, and how far it got. */
export interface PullProgress {
  repository: string;
  digest: string;
  bytes: number;
  /** Undefined when upstream sent no Content-Length. */
  size: number | undefined;
}

/** Digests followed at most while they fill (one per cold blob in flight; a fill ends within the upstream timeout). */
const MAX_FOLLOWED = 1_000;

/** Answers that went to a fill of this process's cache (their progress is the fill's). */
const FILLED: ReadonlySet<BlobAnswer['source']> = new Set(['upstream', 'coalesced']);

/** Blob fills in flight in one process, read from the cache's own fills (nothing is copied per chunk). */
export class PullsInProgress {
  private readonly digests = new Set<string>();

  constructor(private readonly cache: Pick<Cache, 'inflight'>) {}

  follow(digest: string): void {
    if (this.digests.size < MAX_FOLLOWED) this.digests.add(digest);
  }

  list(): PullProgress[] {
    const out: PullProgress[] = [];
    for (const digest of this.digests) {
      const fill = this.cache.inflight(digest);
      if (fill === undefined) {
        this.digests.delete(digest);
        continue;
      }
      out.push({ repository: `${fill.registry}/${fill.repository}`, digest, bytes: fill.written, size: fill.size });
    }
    return out;
  }
}

/**
 * Wraps the manifest and blob services so that every answer is counted for the status page (hits,
 * misses, bytes, pulls per repository) and cold blobs are followed while they fill. The fast manifest
 * path calls the wrapped `fresh`, so its answers count too. Failures are not counted here: refusals
 * and upstream errors reach the page through the preflight and the registry watch.
 */
export function countingServices(
  inner: Pick<Services, 'manifests' | 'blobs'>,
  traffic: Traffic,
  pulls: PullsInProgress,
): Pick<Services, 'manifests' | 'blobs'> {
  const { manifests, blobs } = inner;
  const fresh = manifests.fresh?.bind(manifests);
  return {
    manifests: {
      async get(req) {
        const answer = await manifests.get(req);
        traffic.record(`${req.route.registry}/${req.route.repository}`, answer.source !== 'upstream', 0, req.reference.kind === 'tag');
        return answer;
      },
      ...(fresh === undefined
        ? {}
        : {
            fresh(req) {
              const answer = fresh(req);
              if (answer !== undefined) traffic.record(`${req.route.registry}/${req.route.repository}`, true, 0, req.reference.kind === 'tag');
              return answer;
            },
          }),
    },
    blobs: {
      async get(req) {
        const answer = await blobs.get(req);
        const bytes = req.method === 'GET' ? answer.length : 0;
        if (req.method === 'GET' && FILLED.has(answer.source)) pulls.follow(req.digest);
        traffic.record(`${req.route.registry}/${req.route.repository}`, answer.source !== 'upstream', bytes, false);
        return answer;
      },
    },
  };
}
