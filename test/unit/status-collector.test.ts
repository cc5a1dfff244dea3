import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { escapeHtml, formatBytes, formatPercent, renderStatusPage } from '../../src/status/render-html.js';
import { buildReport, type HostFacts, type ProcessFacts } from '../../src/status/status-report.js';
import { Traffic } from '../../src/status/traffic.js';
import { PullsInProgress } from '../../src/status/counting-services.js';
import { StatusCollector } from '../../src/status/collector.js';
import { RegistryWatch } from '../../src/upstream/registry-watch.js';
import { RecentEvents } from '../../src/util/recent-events.js';
import { FakeClock } from '../helpers/fake-clock.js';

const config = loadConfigText('registries:\n  docker.io: {}\n  ghcr.io: { auth: { type: anonymous } }\n', {}, 'test', '/tmp');
const host: HostFacts = { cache: { bytes: 10, maxBytes: 100, blobs: 1, manifests: 1, tags: 1 }, shared: null, cluster: null };

function part(id: string, traffic: Traffic, registries: ProcessFacts['registries'] = {}): ProcessFacts {
  return { id, pid: 1, startedAt: Date.parse('2026-01-01T00:00:00Z'), traffic: traffic.facts(), pulls: [], registries, recent: [] };
}

describe('Traffic', () => {
  it('counts hits, misses and bytes per minute for the last hour, and pulls per repository', () => {
    const clock = new FakeClock();
    const traffic = new Traffic(clock);
    traffic.record('docker.io/library/app', false, 0, true);
    traffic.record('docker.io/library/app', false, 1000, false);
    clock.advance(60_000);
    traffic.record('docker.io/library/app', true, 0, true);
    traffic.record('docker.io/library/app', true, 1000, false);
    traffic.record('ghcr.io/org/tool', true, 0, false);
    const facts = traffic.facts();
    expect(facts).toMatchObject({ hits: 3, misses: 2, bytesServed: 2000, bytesFromUpstream: 1000 });
    expect(facts.history.map((m) => [m.hits, m.misses])).toEqual([
      [0, 2],
      [3, 0],
    ]);
    // A HEAD by digest (no pull, no bytes) does not make a repository.
    expect(facts.topRepositories).toEqual([{ name: 'docker.io/library/app', pulls: 2, bytes: 2000 }]);
    clock.advance(60 * 60_000);
    expect(traffic.facts().history).toEqual([]);
  });

  it('keeps memory bounded: 1,000 repositories at most, the least pulled making room', () => {
    const traffic = new Traffic(new FakeClock());
    traffic.record('hot/app', true, 0, true);
    traffic.record('hot/app', true, 0, true);
    for (let i = 0; i < 1_500; i++) traffic.record(`cold/${i}`, true, 0, true);
    const top = traffic.facts().topRepositories;
    expect(top).toHaveLength(10);
    expect(top[0]).toEqual({ name: 'hot/app', pulls: 2, bytes: 0 });
  });
});

describe('buildReport', () => {
  it('adds up the workers: counters, minutes, repositories; registries keep the latest sighting', () => {
    const clock = new FakeClock();
    const a = new Traffic(clock);
    const b = new Traffic(clock);
    a.record('docker.io/library/app', false, 300, true);
    b.record('docker.io/library/app', true, 300, true);
    b.record('docker.io/library/app', true, 300, true);
    const now = clock.now();
    const report = buildReport(
      config,
      host,
      [
        part('worker-0', a, { 'docker.io': { lastSuccess: now - 5_000, lastError: { time: now - 1_000, reason: 'answered 503' }, rateLimit: { limit: 100, remaining: 50, windowSeconds: 21600, seenAt: now - 5_000 }, credential: 'none' } }),
        part('worker-1', b, { 'docker.io': { lastSuccess: now, lastError: undefined, rateLimit: { limit: 100, remaining: 42, windowSeconds: 21600, seenAt: now }, credential: 'none' } }),
      ],
      now,
      '1.2.3',
    );
    expect(report.requests).toEqual({ total: 3, hits: 2, misses: 1, hitRatio: 2 / 3 });
    expect(report.bytes).toEqual({ served: 900, fromUpstream: 300, saved: 600, hitRatio: 600 / 900 });
    expect(report.topRepositories).toEqual([{ name: 'docker.io/library/app', pulls: 3, bytes: 900 }]);
    expect(report.history).toHaveLength(60);
    expect(report.history.at(-1)).toMatchObject({ hits: 2, misses: 1, bytesServed: 900 });
    const hub = report.registries.find((r) => r.name === 'docker.io');
    expect(hub).toMatchObject({ healthy: true, rateLimit: { remaining: 42 }, lastError: { reason: 'answered 503' }, credential: { kind: 'none', expiresAt: null } });
    // Never asked yet: healthy, and the configured type as its credential kind.
    expect(report.registries.find((r) => r.name === 'ghcr.io')).toMatchObject({ healthy: true, lastSuccess: null, lastError: null, rateLimit: null, credential: { kind: 'anonymous' } });
    expect(report.workers.map((w) => [w.id, w.requests])).toEqual([
      ['worker-0', 1],
      ['worker-1', 2],
    ]);
  });

  it('has no hit ratio before the first request', () => {
    const clock = new FakeClock();
    const report = buildReport(config, host, [part('main', new Traffic(clock))], clock.now(), '1.2.3');
    expect(report.requests.hitRatio).toBeNull();
    expect(report.bytes.hitRatio).toBeNull();
  });
});

describe('StatusCollector', () => {
  it('reads the cache figures from the index (usage row) and this process’s facts, and survives an unreadable index', async () => {
    const clock = new FakeClock();
    const traffic = new Traffic(clock);
    traffic.record('docker.io/library/app', true, 5, true);
    const index = { summary: () => ({ blobs: 4, manifests: 2, bytes: 4096, oldestAccess: undefined, newestAccess: undefined }), tagCount: () => 3 };
    let readable = true;
    const cache = {
      get index() {
        if (!readable) throw new Error('SQLITE_IOERR');
        return index;
      },
      sizeBytes: 4096,
      maxSizeBytes: 1 << 20,
      inflight: () => undefined,
    };
    const collector = new StatusCollector({
      config,
      clock,
      cache: cache as unknown as ConstructorParameters<typeof StatusCollector>[0]['cache'],
      watch: new RegistryWatch(clock, undefined),
      recent: new RecentEvents(clock),
      traffic,
      pulls: new PullsInProgress(cache),
    });
    clock.advance(90_000);
    const report = await collector.report();
    expect(report.cache).toEqual({ bytes: 4096, maxBytes: 1 << 20, blobs: 4, manifests: 2, tags: 3, shared: null });
    expect(report.uptimeSeconds).toBe(90);
    expect(report.requests.hits).toBe(1);
    readable = false;
    expect((await collector.report()).cache).toMatchObject({ bytes: 4096, blobs: 0 });
  });

  it('follows cold blobs only while their fill runs', () => {
    const fills = new Map([['sha256:aa', { registry: 'docker.io', repository: 'library/app', written: 10, size: 40 }]]);
    const pulls = new PullsInProgress({ inflight: (digest: string) => fills.get(digest) as never });
    pulls.follow('sha256:aa');
    expect(pulls.list()).toEqual([{ repository: 'docker.io/library/app', digest: 'sha256:aa', bytes: 10, size: 40 }]);
    fills.clear();
    expect(pulls.list()).toEqual([]);
  });
});

describe('the page', () => {
  it('formats figures and escapes every value from the report', () => {
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatPercent(2 / 3)).toBe('66.7%');
    expect(formatPercent(null)).toBe('–');
    expect(escapeHtml('<a href="x">&\'')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    const clock = new FakeClock();
    const report = buildReport(config, host, [part('main', new Traffic(clock))], clock.now(), '1.2.3');
    report.recent = [{ time: report.generatedAt, kind: 'upstream', registry: 'docker.io', reason: '<script>alert(1)</script>' }];
    const html = renderStatusPage(report);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toMatch(/<meta http-equiv="refresh"/);
    expect(html).not.toMatch(/(src|href)="https?:/);
  });
});
