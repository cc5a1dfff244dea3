// Real peers: the README's offline "Try it" block (Debian's docker-registry, skopeo, pullgate from dist/),
// run as printed, with only its ports and its directory moved so it cannot meet another run's.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../support/ports.js';
import { requireTools } from '../../support/tools.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The fenced sh block that follows the README's "Without internet access" paragraph. */
function offlineBlock(readme: string): string {
  const intro = readme.indexOf('Without internet access, put a local registry behind it');
  if (intro === -1) throw new Error('README: the offline "Try it" paragraph is gone');
  const open = readme.indexOf('```sh\n', intro);
  const close = readme.indexOf('\n```', open + 6);
  if (open === -1 || close === -1) throw new Error('README: no ```sh block after the offline "Try it" paragraph');
  return readme.slice(open + 6, close + 1);
}

/** Replaces every `from` with `to`, failing when the block no longer contains `from` (the test would test nothing). */
function substitute(block: string, from: string, to: string): string {
  if (!block.includes(from)) throw new Error(`README's offline block no longer contains ${from}; update this test's substitutions`);
  return block.split(from).join(to);
}

/** Runs a bash script in its own process group; every process it left behind is killed at the end. */
function bash(script: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-e', '-c', script], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  };
  const timer = setTimeout(killGroup, timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup();
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the README's offline Try it", () => {
  it('runs as printed (own registry config, an image built from files, a dotted registry key) and the final inspect succeeds', async () => {
    requireTools(['docker-registry', 'skopeo']);
    const block = offlineBlock(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    const [registryPort, pullgatePort] = [await freePort(), await freePort()];
    let script = substitute(block, '127.0.0.1:5001', `127.0.0.1:${registryPort}`);
    script = substitute(script, '127.0.0.1:5000', `127.0.0.1:${pullgatePort}`);
    script = substitute(script, '/tmp/pullgate-try', path.join(dir, 'try'));
    // The block waits for each server with an until-loop; a server that never comes up ends in the timeout.
    const result = await bash(script, 90_000);
    const logs = ['registry.log', 'pullgate.log'].map((name) => {
      try {
        return `--- ${name}\n${readFileSync(path.join(dir, 'try', name), 'utf8').slice(-3000)}`;
      } catch {
        return `--- ${name}: none`;
      }
    });
    expect(result.code, `the block exited ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}\n${logs.join('\n')}`).toBe(0);
    const inspected = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { Name?: string; Digest?: string; Layers?: string[] };
    expect(inspected.Name).toBe(`127.0.0.1:${pullgatePort}/registry.local/org/app`);
    expect(inspected.Digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(inspected.Layers).toHaveLength(1);
  });
});
