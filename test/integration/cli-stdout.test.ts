import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source (tsx). With `closeAfterFirstChunk`, the reader closes stdout after the
 * first chunk, as `| head -1` does, while the CLI still has far more than a pipe buffer to write.
 */
function run(args: string[], env: Record<string, string> = {}, closeAfterFirstChunk = false): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, PULLGATE_CONFIG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (closeAfterFirstChunk) child.stdout.destroy();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('the pullgate CLI', () => {
  it('ends quietly with exit 0 when the reader of stdout goes away (hosts containerd | head -1)', async () => {
    // 3000 registries print ~400 KiB: several pipe buffers, so writes continue after the reader left.
    const many = path.join(dir, 'many.yaml');
    writeFileSync(many, `registries:\n${Array.from({ length: 3000 }, (_, i) => `  r${i}.example.com: {}\n`).join('')}`);
    const result = await run(['hosts', 'containerd', '--config', many], {}, true);
    expect(result.stdout.startsWith('# --- r0.example.com/hosts.toml')).toBe(true);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('prints the version of package.json for --version and -V', async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await run([flag]);
      expect(result).toEqual({ status: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('hosts: exits 2 with a clear message when listen is 0.0.0.0 and --mirror is missing, and prints bare JSON with it', async () => {
    const refused = await run(['hosts', 'docker'], { PULLGATE_LISTEN: '0.0.0.0:5000' });
    expect(refused.status).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^pullgate: hosts: listen is 0\.0\.0\.0:5000 .*--mirror HOST:PORT/);
    const given = await run(['hosts', 'docker', '--mirror', '127.0.0.1:5000'], { PULLGATE_LISTEN: '0.0.0.0:5000' });
    expect(given.status).toBe(0);
    expect(JSON.parse(given.stdout)).toEqual({ 'registry-mirrors': ['http://127.0.0.1:5000'] });
  });

  it('hosts docker --out: exits 2 on a daemon.json that is not JSON and leaves it as it was', async () => {
    const out = mkdtempSync(path.join(dir, 'docker-'));
    writeFileSync(path.join(out, 'daemon.json'), '{ "log-level": "warn", }');
    const result = await run(['hosts', 'docker', '--out', out]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/daemon\.json: not valid JSON/);
    expect(readFileSync(path.join(out, 'daemon.json'), 'utf8')).toBe('{ "log-level": "warn", }');
  });

  it('cache ls starts with a header row', async () => {
    const storage = mkdtempSync(path.join(dir, 'storage-'));
    const result = await run(['cache', 'ls'], { PULLGATE_STORAGE: storage });
    expect(result).toEqual({ status: 0, stdout: 'DIGEST\tKIND\tSIZE\tLAST ACCESS\tREPOSITORIES\n', stderr: '' });
  });
});
