// Real peers: skopeo pulls one image three times through a running `pullgate serve` from a distribution registry
// (behind a relay that answers with Docker Hub's rate-limit headers), one configured registry is down, and Debian's
// Chromium (driven by playwright-core, no browser download) renders the status page: the same figures as
// /api/status, the repository, every registry, the hit ratio as a percentage, no secret, with and without
// JavaScript. The screenshot is the README's (docs/status-page.png).
import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { logsOf } from '../../support/diagnostics.js';
import { freePort } from '../../support/ports.js';
import { REPO_ROOT, startPullgate } from '../../support/pullgate.js';
import { skopeoPull } from '../../support/skopeo.js';
import type { StatusReport } from '../../src/status/status-report.js';
import { formatPercent } from '../../src/status/render-html.js';
import { useSuite } from './support/suite.js';
import { startUpstream } from './support/upstream.js';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'registry.example';
const DOWN = 'down.example';

/** A relay in front of the registry that adds `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 42;w=21600`, as Docker Hub does. */
async function rateLimitRelay(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42;w=21600' });
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the status page in a real browser after three pulls', () => {
  const suite = useSuite('status-page', async (ws) => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`status page e2e: ${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); this test does not download a browser`);
    }
    const up = await startUpstream(ws, 'htpasswd');
    const relay = await rateLimitRelay(up.registry.url);
    ws.defer(() => relay.close());
    const downPort = await freePort();
    const pg = await startPullgate(ws, 'pullgate', {
      defaultRegistry: KEY,
      registries: [
        { key: KEY, url: relay.url, username: up.puller.username, password: up.puller.password },
        { key: DOWN, url: `http://127.0.0.1:${downPort}`, username: 'nobody', password: 'down-secret-5c1d' },
      ],
    });
    for (let i = 0; i < 3; i++) {
      const res = await skopeoPull(`${pg.host}/${up.repository}:${up.tag}`, ws.path(`pull-${i}`), up.tag);
      expect(res.code, `skopeo pull ${i}\n${res.stderr}\n${logsOf(pg.daemon)}`).toBe(0);
    }
    const failed = await skopeoPull(`${pg.host}/${DOWN}/org/tool:1`, ws.path('pull-down'), '1');
    expect(failed.code, 'a pull from the registry that is down fails').not.toBe(0);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    ws.defer(() => browser.close());
    return { up, pg, browser };
  });

  async function report(url: string): Promise<StatusReport> {
    const res = await fetch(`${url}/api/status`);
    expect(res.status).toBe(200);
    return (await res.json()) as StatusReport;
  }

  /** The page as the browser rendered it: its text and each figure's raw value. */
  async function render(browser: Browser, url: string, javaScriptEnabled: boolean, screenshot?: string): Promise<{ text: string; figures: Record<string, string> }> {
    const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 1280, height: 900 } });
    const external: string[] = [];
    const page = await context.newPage();
    page.on('request', (req) => {
      if (!req.url().startsWith(url)) external.push(req.url());
    });
    const res = await page.goto(`${url}/`);
    expect(res?.status()).toBe(200);
    const text = await page.locator('body').innerText();
    const figures: Record<string, string> = {};
    for (const node of await page.locator('[data-figure]').all()) figures[(await node.getAttribute('data-figure')) ?? ''] = (await node.getAttribute('data-value')) ?? '';
    if (screenshot !== undefined) await page.screenshot({ path: screenshot, fullPage: true });
    await context.close();
    expect(external, 'the page loads nothing from elsewhere').toEqual([]);
    return { text, figures };
  }

  it('/api/status has the cache, the hits, the repository on top, the rate limit and the down registry’s last error', async () => {
    const { up, pg } = suite().value;
    const status = await report(pg.url);
    expect(status.cache.bytes).toBeGreaterThan(0);
    expect(status.cache.blobs).toBeGreaterThan(0);
    expect(status.requests.hits).toBeGreaterThan(0);
    expect(status.requests.hitRatio).toBeGreaterThan(0);
    expect(status.requests.hitRatio).toBeLessThan(1);
    expect(status.topRepositories[0]).toMatchObject({ name: `${KEY}/${up.repository}`, pulls: 3 });
    expect(status.registries.find((r) => r.name === KEY)).toMatchObject({ healthy: true, rateLimit: { limit: 100, remaining: 42, windowSeconds: 21600 } });
    const down = status.registries.find((r) => r.name === DOWN);
    expect(down?.healthy).toBe(false);
    expect(down?.lastError?.reason).toMatch(/unreachable/);
    const metrics = await (await fetch(`${pg.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^pullgate_upstream_ratelimit_remaining\\{registry="${KEY}"\\} 42$`, 'm'));
  });

  it('Chromium renders the same figures as /api/status, with JavaScript and without, and no secret; the screenshot is saved', async () => {
    const { up, pg, browser } = suite().value;
    const { ws } = suite();
    const shot = ws.path('status-page.png');
    const withJs = await render(browser, pg.url, true, shot);
    const withoutJs = await render(browser, pg.url, false);
    const status = await report(pg.url);
    for (const page of [withJs, withoutJs]) {
      expect(page.text).toContain(`${KEY}/${up.repository}`);
      for (const registry of status.registries) expect(page.text).toContain(registry.name);
      expect(page.text).toContain(formatPercent(status.requests.hitRatio));
      expect(page.text).toMatch(/\d+\.\d%/);
      expect(page.figures).toMatchObject({
        'hit-ratio': String(status.requests.hitRatio),
        hits: String(status.requests.hits),
        misses: String(status.requests.misses),
        'bytes-served': String(status.bytes.served),
        'bytes-saved': String(status.bytes.saved),
        'cache-bytes': String(status.cache.bytes),
        'cache-blobs': String(status.cache.blobs),
        [`ratelimit-remaining:${KEY}`]: '42',
      });
      for (const secret of [up.puller.password, up.puller.username, up.seeder.password, 'down-secret-5c1d']) expect(page.text).not.toContain(secret);
    }
    const json = JSON.stringify(status);
    for (const secret of [up.puller.password, up.seeder.password, 'down-secret-5c1d']) expect(json).not.toContain(secret);
    await copyFile(shot, join(REPO_ROOT, 'docs', 'status-page.png'));
  });
});
