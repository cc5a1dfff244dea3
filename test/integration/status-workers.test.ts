import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import type { StatusReport } from '../../src/status/status-report.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A GET on a connection of its own, so the primary hands each to a worker in turn. */
async function getAlone(url: string): Promise<{ status: number; text: string }> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const res = await request(url, { dispatcher });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

describe('status page under serve --workers', () => {
  it('answers for the whole host whichever worker takes the request', { timeout: 120_000 }, async () => {
    const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
    cleanups.push(() => fake.stop());
    fake.add(makeImage('team/app', '1', 1, 4096));
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-status-workers-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const configFile = path.join(dir, 'pullgate.yaml');
    writeFileSync(configFile, `defaultRegistry: reg.example\nregistries: { reg.example: { url: ${fake.origin} } }\nstorage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--workers', '2'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PULLGATE_CONFIG: '' },
    });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const output: string[] = [];
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workers did not listen:\n${output.join('')}`)), 60_000);
      const check = (): void => {
        const lines = output.join('').split('\n').filter((line) => line.includes('pullgate listening'));
        if (lines.length < 2) return;
        clearTimeout(timer);
        resolve(Number(new URL((JSON.parse(lines[0] ?? '{}') as { address: string }).address).port));
      };
      for (const stream of [child.stdout, child.stderr]) {
        stream.on('data', (chunk: Buffer) => {
          output.push(chunk.toString('utf8'));
          check();
        });
      }
    });
    const port = await listening;
    const PULLS = 6;
    for (let i = 0; i < PULLS; i++) {
      expect((await getAlone(`http://127.0.0.1:${port}/v2/team/app/manifests/1`)).status).toBe(200);
    }
    const reports: StatusReport[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await getAlone(`http://127.0.0.1:${port}/api/status`);
      expect(answer.status).toBe(200);
      reports.push(JSON.parse(answer.text) as StatusReport);
    }
    for (const report of reports) {
      expect(report.workers.map((w) => w.id)).toEqual(['worker-0', 'worker-1']);
      // The primary hands connections to the workers in turn: both served some, and every answer adds them up.
      expect(report.workers.every((w) => w.requests > 0)).toBe(true);
      expect(report.requests.total).toBe(PULLS);
      expect(report.topRepositories[0]).toMatchObject({ name: 'reg.example/team/app', pulls: PULLS });
      expect(report.registries[0]?.lastSuccess).not.toBeNull();
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
