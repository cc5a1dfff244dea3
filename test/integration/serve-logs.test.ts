import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface LogLine {
  level: number;
  msg: string;
  address?: string;
  variables?: string[];
  path?: string;
}

/** Collects a child's stdout as JSON lines and resolves waits as soon as a matching line arrives. */
class LineWatcher {
  readonly lines: LogLine[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private rest = '';

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const parts = (this.rest + chunk).split('\n');
      this.rest = parts.pop() ?? '';
      for (const part of parts) {
        if (part.trim() === '') continue;
        const line = JSON.parse(part) as LogLine;
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.match(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
  }

  /** The first line that matches, waiting at most `ms` of wall time for it to be written. */
  next(match: (l: LogLine) => boolean, ms: number, what: string): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line "${what}" within ${ms} ms; got ${JSON.stringify(this.lines)}`)), ms);
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }
}

describe('pullgate serve logs', () => {
  it('writes the start-up lines at once and a quiet request line within about a second, not when 4 KiB have piled up', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-logs-'));
    dirs.push(dir);
    const configFile = path.join(dir, 'pullgate.yaml');
    writeFileSync(
      configFile,
      `storage: { path: ${JSON.stringify(path.join(dir, 'data'))} }\nregistries:\n  reg.example:\n    url: http://127.0.0.1:9\n    auth: { type: basic, username: u, password: "\${PULLGATE_TEST_UNSET_SECRET}" }\ndefaultRegistry: reg.example\n`,
    );
    const env = { ...process.env };
    delete env.PULLGATE_TEST_UNSET_SECRET;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--workers', '1'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const watcher = new LineWatcher(child);

    // Start-up: 20 s allows for tsx compiling the sources on a loaded machine; the lines are a few hundred bytes,
    // so before the fix they stayed in the 4 KiB buffer and never arrived.
    const listening = await watcher.next((l) => l.msg === 'pullgate listening', 20_000, 'pullgate listening');
    const warning = await watcher.next((l) => l.variables !== undefined, 1_000, 'unset variables warning');
    expect(warning.variables).toEqual(['PULLGATE_TEST_UNSET_SECRET']);
    expect(warning.level).toBe(40);

    const res = await request(`${listening.address ?? ''}/v2/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const sent = Date.now();
    const line = await watcher.next((l) => l.path === '/v2/', 3_000, 'access line for /v2/');
    expect(line.path).toBe('/v2/');
    expect(Date.now() - sent).toBeLessThan(3_000);
  });
});
