import { tmpdir } from 'node:os';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const SECRET = 'Mirr0r-secret-pw';

async function fake(clock: FakeClock): Promise<FakeRegistry> {
  const registry = await new FakeRegistry({ kind: 'basic', username: 'm', password: SECRET }, clock).start();
  cleanups.push(() => registry.stop());
  return registry;
}

async function doctor(image: string, yaml: string[], clock: FakeClock): Promise<{ ok: boolean; out: string }> {
  const config = loadConfigText(yaml.join('\n'), {}, 'test', tmpdir());
  const dispatcher = new Agent();
  cleanups.push(() => dispatcher.close());
  const lines: string[] = [];
  const ok = await runDoctor(image, config, { env: {}, clock, dispatcher, rktDirs: [] }, (line) => lines.push(line));
  const out = lines.join('\n');
  expect(out).not.toContain(SECRET);
  return { ok, out };
}

describe('pullgate doctor with mirrors', () => {
  it('shows each endpoint and its state, asking a digests-only mirror by the digest url gave', async () => {
    const clock = new FakeClock();
    const url = await fake(clock);
    const image = url.add(makeImage('team/app', '1'));
    const tagged = await fake(clock);
    const digests = await fake(clock);
    digests.add(image);
    const auth = `auth: { type: basic, username: m, password: ${SECRET} }`;
    const { ok, out } = await doctor(
      'hub.example/team/app:1',
      ['registries:', `  hub.example:`, `    url: ${url.origin}`, `    ${auth}`, `    mirrors: [{ url: ${tagged.origin}, ${auth}, tags: true }, { url: ${digests.origin}, ${auth} }]`],
      clock,
    );
    expect(ok).toBe(true);
    expect(out).toContain(`endpoints    1. ${url.origin} (tags and digests), then 2 mirror(s)`);
    expect(out).toContain(`mirror       2. ${tagged.origin} (tags and digests): HEAD ${tagged.origin}/v2/team/app/manifests/1 → 404 (up, does not have it)`);
    expect(out).toContain(`mirror       3. ${digests.origin} (digests only): HEAD ${digests.origin}/v2/team/app/manifests/${image.digest} → 200 (up, has it)`);
  });

  it('says the image is pullable from a mirror while url is unreachable', async () => {
    const clock = new FakeClock();
    const mirror = await fake(clock);
    mirror.add(makeImage('team/app', '1'));
    const { ok, out } = await doctor(
      'hub.example/team/app:1',
      ['registries:', '  hub.example:', '    url: "http://127.0.0.1:9"', `    mirrors: [{ url: ${mirror.origin}, auth: { type: basic, username: m, password: ${SECRET} }, tags: true }]`],
      clock,
    );
    expect(out).toContain('ping         FAILED');
    expect(out).toContain(`mirror       2. ${mirror.origin} (tags and digests): HEAD ${mirror.origin}/v2/team/app/manifests/1 → 200 (up, has it)`);
    expect(out).toContain(`result       hub.example/team/app:1 is pullable through pullgate from the mirror ${mirror.origin}`);
    expect(ok).toBe(true);
  });
});
