import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/core/metrics.js';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/pullgate-dashboard.json', import.meta.url), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

describe('deploy/grafana/pullgate-dashboard.json', () => {
  it('queries only metrics pullgate exports, and has the hit ratio, bytes saved, upstream errors and rate limits', async () => {
    const exported = new Set((await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/pullgate_[a-z_]+/g) ?? [])));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(exported, name).toContain(name);
    for (const name of ['pullgate_cache_hits_total', 'pullgate_upstream_failures_total', 'pullgate_upstream_ratelimit_remaining', 'pullgate_upstream_bytes_total']) expect(used).toContain(name);
    expect(dashboard.panels.map((p) => p.title)).toEqual(expect.arrayContaining(['Hit ratio (requests)', 'Bytes saved (range)', 'Upstream errors', 'Upstream rate limit remaining']));
  });
});
