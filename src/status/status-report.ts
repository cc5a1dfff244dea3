import type { Config } from '../config/config.js';
import type { RegistrySeen } from '../upstream/registry-watch.js';
import type { RecentEvent } from '../util/recent-events.js';
import type { PullProgress } from './counting-services.js';
import { HISTORY_MINUTES, TOP_REPOSITORIES, type MinuteSample, type RepositoryFigures, type TrafficFacts } from './traffic.js';

/** What one process knows that the others do not (plain JSON: a worker sends it to the primary over IPC). */
export interface ProcessFacts {
  /** `main`, or `worker-<index>` under `serve --workers`. */
  id: string;
  pid: number;
  startedAt: number;
  traffic: TrafficFacts;
  pulls: PullProgress[];
  registries: Record<string, RegistrySeen>;
  recent: RecentEvent[];
}

/** What every process reads alike from the host's shared storage (the index's usage row, never a scan). */
export interface HostFacts {
  cache: { bytes: number; maxBytes: number; blobs: number; manifests: number; tags: number };
  /** `storage.s3`, when the local disk sits in front of a shared store. */
  shared: { bucket: string; endpoint: string | undefined } | null;
  /** Cluster replicas (or the workers' sockets under `serve --workers`), when there is a cluster. */
  cluster: { self: string; members: { id: string; live: boolean }[] } | null;
}

/** One registry as the status page shows it: health, the kind of credential source, the rate limit. */
export interface RegistryStatus {
  name: string;
  url: string;
  healthy: boolean;
  lastSuccess: string | null;
  lastError: { time: string; reason: string } | null;
  credential: { kind: string; expiresAt: string | null };
  rateLimit: { limit: number | null; remaining: number | null; windowSeconds: number | null } | null;
}

/** `GET /api/status`: the status page's facts as JSON, for the whole host. */
export interface StatusReport {
  version: string;
  uptimeSeconds: number;
  generatedAt: string;
  cache: HostFacts['cache'] & { shared: HostFacts['shared'] };
  requests: { total: number; hits: number; misses: number; hitRatio: number | null };
  bytes: { served: number; fromUpstream: number; saved: number; hitRatio: number | null };
  /** The last hour, one entry per minute, oldest first (minutes without traffic are zeros). */
  history: { minute: string; hits: number; misses: number; bytesServed: number; bytesFromUpstream: number }[];
  registries: RegistryStatus[];
  topRepositories: RepositoryFigures[];
  pulls: PullProgress[];
  workers: { id: string; pid: number; uptimeSeconds: number; requests: number; pullsInProgress: number }[];
  cluster: HostFacts['cluster'];
  recent: (Omit<RecentEvent, 'time'> & { time: string })[];
}

const MINUTE_MS = 60_000;
/** Recent events shown. */
const RECENT_SHOWN = 30;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
const ratio = (part: number, whole: number): number | null => (whole === 0 ? null : part / whole);

/** The later of two sightings of a registry (the worker that heard from it last knows best). */
function mergeSeen(a: RegistrySeen | undefined, b: RegistrySeen): RegistrySeen {
  if (a === undefined) return b;
  const later = <T>(x: T | undefined, y: T | undefined, at: (v: T) => number): T | undefined => (x === undefined ? y : y === undefined ? x : at(y) > at(x) ? y : x);
  return {
    lastSuccess: later(a.lastSuccess, b.lastSuccess, (t) => t),
    lastError: later(a.lastError, b.lastError, (e) => e.time),
    rateLimit: later(a.rateLimit, b.rateLimit, (r) => r.seenAt),
    credential: b.credential ?? a.credential,
  };
}

function mergeHistory(parts: readonly ProcessFacts[], now: number): StatusReport['history'] {
  const last = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const first = last - (HISTORY_MINUTES - 1) * MINUTE_MS;
  const minutes = new Map<number, MinuteSample>();
  for (let minute = first; minute <= last; minute += MINUTE_MS) minutes.set(minute, { minute, hits: 0, misses: 0, bytesServed: 0, bytesFromUpstream: 0 });
  for (const part of parts) {
    for (const sample of part.traffic.history) {
      const into = minutes.get(sample.minute);
      if (into === undefined) continue;
      into.hits += sample.hits;
      into.misses += sample.misses;
      into.bytesServed += sample.bytesServed;
      into.bytesFromUpstream += sample.bytesFromUpstream;
    }
  }
  return [...minutes.values()].map(({ minute, ...figures }) => ({ minute: new Date(minute).toISOString(), ...figures }));
}

function mergeRepositories(parts: readonly ProcessFacts[]): RepositoryFigures[] {
  const byName = new Map<string, RepositoryFigures>();
  for (const part of parts) {
    for (const figures of part.traffic.topRepositories) {
      const into = byName.get(figures.name) ?? { name: figures.name, pulls: 0, bytes: 0 };
      into.pulls += figures.pulls;
      into.bytes += figures.bytes;
      byName.set(figures.name, into);
    }
  }
  return [...byName.values()].sort((a, b) => b.pulls - a.pulls || b.bytes - a.bytes || a.name.localeCompare(b.name)).slice(0, TOP_REPOSITORIES);
}

/**
 * Builds the host's report from the shared facts and every process's own (one part per worker, or
 * one for a single process): counters and minutes add up, registries keep the latest sighting.
 */
export function buildReport(config: Config, host: HostFacts, parts: readonly ProcessFacts[], now: number, version: string): StatusReport {
  const sum = (pick: (t: TrafficFacts) => number): number => parts.reduce((total, part) => total + pick(part.traffic), 0);
  const hits = sum((t) => t.hits);
  const misses = sum((t) => t.misses);
  const served = sum((t) => t.bytesServed);
  const fromUpstream = sum((t) => t.bytesFromUpstream);
  const seen = new Map<string, RegistrySeen>();
  for (const part of parts) for (const [name, entry] of Object.entries(part.registries)) seen.set(name, mergeSeen(seen.get(name), entry));
  const registries = [...config.registries.values()].map((registry): RegistryStatus => {
    const entry = seen.get(registry.key);
    const lastError = entry?.lastError;
    const lastSuccess = entry?.lastSuccess;
    const limit = entry?.rateLimit;
    return {
      name: registry.key,
      url: registry.url,
      healthy: lastError === undefined || (lastSuccess !== undefined && lastSuccess > lastError.time),
      lastSuccess: iso(lastSuccess),
      lastError: lastError === undefined ? null : { time: iso(lastError.time) ?? '', reason: lastError.reason },
      // Before the first pull the configured type; then the kind of place the credential came from.
      credential: { kind: entry?.credential ?? registry.auth.type, expiresAt: null },
      rateLimit: limit === undefined ? null : { limit: limit.limit ?? null, remaining: limit.remaining ?? null, windowSeconds: limit.windowSeconds ?? null },
    };
  });
  const startedAt = Math.min(...parts.map((part) => part.startedAt), now);
  return {
    version,
    uptimeSeconds: Math.max(0, Math.floor((now - startedAt) / 1000)),
    generatedAt: new Date(now).toISOString(),
    cache: { ...host.cache, shared: host.shared },
    requests: { total: hits + misses, hits, misses, hitRatio: ratio(hits, hits + misses) },
    bytes: { served, fromUpstream, saved: Math.max(0, served - fromUpstream), hitRatio: ratio(Math.max(0, served - fromUpstream), served) },
    history: mergeHistory(parts, now),
    registries,
    topRepositories: mergeRepositories(parts),
    pulls: parts.flatMap((part) => part.pulls),
    workers: parts.map((part) => ({
      id: part.id,
      pid: part.pid,
      uptimeSeconds: Math.max(0, Math.floor((now - part.startedAt) / 1000)),
      requests: part.traffic.hits + part.traffic.misses,
      pullsInProgress: part.pulls.length,
    })),
    cluster: host.cluster,
    recent: parts
      .flatMap((part) => part.recent)
      .sort((a, b) => b.time - a.time)
      .slice(0, RECENT_SHOWN)
      .map((event) => ({ ...event, time: iso(event.time) ?? '' })),
  };
}
