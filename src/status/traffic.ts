import type { Clock } from '../core/clock.js';

/** One minute of traffic: when it started (epoch ms) and what was answered in it. */
export interface MinuteSample {
  minute: number;
  hits: number;
  misses: number;
  bytesServed: number;
  bytesFromUpstream: number;
}

/** Pulls and blob bytes of one repository (`ghcr.io/org/app`). */
export interface RepositoryFigures {
  name: string;
  pulls: number;
  bytes: number;
}

/** What one process answered since it started: plain JSON, so a worker can send it to the primary. */
export interface TrafficFacts {
  hits: number;
  misses: number;
  bytesServed: number;
  bytesFromUpstream: number;
  /** The minutes of the last hour that had traffic, oldest first. */
  history: MinuteSample[];
  /** The repositories with the most pulls, most first. */
  topRepositories: RepositoryFigures[];
}

const MINUTE_MS = 60_000;
/** Minutes of history kept (the page's chart spans the last hour). */
export const HISTORY_MINUTES = 60;
/** Repositories counted at most; past it the one with the fewest pulls makes room (memory stays bounded). */
const MAX_REPOSITORIES = 1_000;
/** Repositories reported. */
export const TOP_REPOSITORIES = 10;

/**
 * Counts the answers of one process for the status page: hits (answered without this request going
 * upstream) and misses, blob bytes served and fetched, a per-minute history of the last hour, and
 * pulls (manifest requests by tag) and bytes per repository. Fixed memory: 60 minutes, 1,000 repositories.
 */
export class Traffic {
  private hits = 0;
  private misses = 0;
  private bytesServed = 0;
  private bytesFromUpstream = 0;
  private readonly minutes: MinuteSample[] = [];
  private readonly repositories = new Map<string, RepositoryFigures>();

  constructor(private readonly clock: Clock) {}

  private currentMinute(): MinuteSample {
    const minute = Math.floor(this.clock.now() / MINUTE_MS) * MINUTE_MS;
    const last = this.minutes[this.minutes.length - 1];
    if (last !== undefined && last.minute === minute) return last;
    const sample = { minute, hits: 0, misses: 0, bytesServed: 0, bytesFromUpstream: 0 };
    this.minutes.push(sample);
    while ((this.minutes[0]?.minute ?? minute) <= minute - HISTORY_MINUTES * MINUTE_MS) this.minutes.shift();
    return sample;
  }

  private repository(name: string): RepositoryFigures {
    let figures = this.repositories.get(name);
    if (figures === undefined) {
      if (this.repositories.size >= MAX_REPOSITORIES) this.dropLeastPulled();
      figures = { name, pulls: 0, bytes: 0 };
      this.repositories.set(name, figures);
    }
    return figures;
  }

  private dropLeastPulled(): void {
    let least: RepositoryFigures | undefined;
    for (const figures of this.repositories.values()) if (least === undefined || figures.pulls < least.pulls) least = figures;
    if (least !== undefined) this.repositories.delete(least.name);
  }

  /** One answer: `hit` when it did not go upstream; `bytes` of blob content sent (0 for manifests and HEAD). */
  record(name: string, hit: boolean, bytes: number, pull: boolean): void {
    const minute = this.currentMinute();
    if (hit) {
      this.hits++;
      minute.hits++;
    } else {
      this.misses++;
      minute.misses++;
      this.bytesFromUpstream += bytes;
      minute.bytesFromUpstream += bytes;
    }
    this.bytesServed += bytes;
    minute.bytesServed += bytes;
    if (!pull && bytes === 0) return;
    const figures = this.repository(name);
    if (pull) figures.pulls++;
    figures.bytes += bytes;
  }

  facts(): TrafficFacts {
    const since = Math.floor(this.clock.now() / MINUTE_MS) * MINUTE_MS - (HISTORY_MINUTES - 1) * MINUTE_MS;
    const top = [...this.repositories.values()].sort((a, b) => b.pulls - a.pulls || b.bytes - a.bytes || a.name.localeCompare(b.name)).slice(0, TOP_REPOSITORIES);
    return {
      hits: this.hits,
      misses: this.misses,
      bytesServed: this.bytesServed,
      bytesFromUpstream: this.bytesFromUpstream,
      history: this.minutes.filter((m) => m.minute >= since).map((m) => ({ ...m })),
      topRepositories: top.map((r) => ({ ...r })),
    };
  }
}
