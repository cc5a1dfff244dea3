import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage, sha256 } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts `pullgate serve` from source in a child process and waits until /healthz answers. */
async function startChild(configFile: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve', '--config', configFile, '--listen', `127.0.0.1:${port}`, '--workers', '1'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await request(`http://127.0.0.1:${port}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) return child;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('pullgate child did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Resolves once `condition` holds, checking every 20 ms for at most 10 s (a child process's file system work). */
async function settled(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('crash safety', () => {
  it('after kill -9 mid-download, restarts with no partial blob and serves only whole, verified content', async () => {
    const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
    const storage = mkdtempSync(path.join(tmpdir(), 'pullgate-crash-'));
    dirs.push(storage);
    const configFile = path.join(storage, 'pullgate.yaml');
    writeFileSync(configFile, `storage: { path: ${JSON.stringify(path.join(storage, 'data'))} }\ndefaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`);
    const small = fake.add(makeImage('team/small', '1', 1, 50_000));
    const big = fake.add(makeImage('team/big', '1', 1, 8 * 1024 * 1024));
    const smallDigest = [...small.blobs.keys()].find((d) => small.blobs.get(d)?.length === 50_000) ?? '';
    const bigDigest = [...big.blobs.keys()].find((d) => big.blobs.get(d)?.length === 8 * 1024 * 1024) ?? '';
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const base = `http://127.0.0.1:${port}`;

    let child = await startChild(configFile, port);
    const whole = await request(`${base}/v2/team/small/blobs/${smallDigest}`);
    expect(sha256(Buffer.from(await whole.body.arrayBuffer()))).toBe(smallDigest);
    // The client gets the last byte before the fill's fdatasync and rename (durability is off the client
    // path): wait until the small blob's temp file has been renamed away, so tmp/ holds the big fill alone.
    await settled(() => !readdirSync(path.join(storage, 'data', 'tmp')).some((name) => name.startsWith(smallDigest.replace(':', '-'))));

    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const pending = await request(`${base}/v2/team/big/blobs/${bigDigest}`);
    pending.body.on('error', () => undefined);
    expect(readdirSync(path.join(storage, 'data', 'tmp'))).toHaveLength(1);
    await killHard(child);

    child = await startChild(configFile, port);
    expect(readdirSync(path.join(storage, 'data', 'tmp'))).toEqual([]);
    const getsBefore = fake.seen.filter((s) => s.path.endsWith(smallDigest)).length;
    const again = await request(`${base}/v2/team/small/blobs/${smallDigest}`);
    expect(sha256(Buffer.from(await again.body.arrayBuffer()))).toBe(smallDigest);
    expect(fake.seen.filter((s) => s.path.endsWith(smallDigest)).length).toBe(getsBefore);

    release();
    fake.faults.holdBlobs = undefined;
    const refetched = await request(`${base}/v2/team/big/blobs/${bigDigest}`);
    expect(refetched.statusCode).toBe(200);
    expect(sha256(Buffer.from(await refetched.body.arrayBuffer()))).toBe(bigDigest);
    await killHard(child);
    await fake.stop();
  });
});
