import { describe, expect, it } from 'vitest';
import { printStartSummary, startSummary } from '../../src/cli/start-summary.js';
import { loadConfigText } from '../../src/config/load.js';
import { VERSION } from '../../src/core/version.js';

function config(yaml: string): ReturnType<typeof loadConfigText> {
  return loadConfigText(`storage: { path: /var/cache/pullgate, maxSize: 20GiB }\n${yaml}`, {}, '/etc/pullgate.yaml', '/');
}

function output(isTTY: boolean | undefined): { isTTY?: boolean; text: string; write(text: string): void } {
  return {
    ...(isTTY === undefined ? {} : { isTTY }),
    text: '',
    write(text: string) {
      this.text += text;
    },
  };
}

describe('serve: the start summary', () => {
  it('says where it listens, the storage and its budget, the registries, the workers and how to point clients at it', () => {
    const text = startSummary(config('listen: 127.0.0.1:5000\nregistries:\n  docker.io: {}\n  ghcr.io: {}\n'), { workers: 2, workersReason: 'one per usable core: 2 cores' });
    expect(text).toBe(
      [
        `pullgate ${VERSION} listening on http://127.0.0.1:5000`,
        '  config:     /etc/pullgate.yaml',
        '  storage:    /var/cache/pullgate (up to 20.0GiB)',
        '  registries: docker.io, ghcr.io',
        '  workers:    2 (one per usable core: 2 cores)',
        'Point a client at it:',
        '  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/library/alpine:3.20',
        '  pullgate hosts containerd --out /etc/containerd/certs.d   # containerd, kubelet',
        '  pullgate hosts docker --out /etc/docker                   # merges into daemon.json',
        '  pullgate hosts podman --out /etc/containers/registries.conf.d',
        'Logs are the JSON lines on this stdout (without a terminal, only they are printed).',
        '',
      ].join('\n'),
    );
  });

  it('on every interface: names a dialable address and gives the hosts commands --mirror', () => {
    const text = startSummary(config('listen: 0.0.0.0:5000\nregistries:\n  ghcr.io: {}\n'), { workers: 1, workersReason: undefined });
    expect(text).toContain('listening on http://0.0.0.0:5000 (every interface)');
    expect(text).toContain('  workers:    1\n');
    expect(text).toContain('docker://127.0.0.1:5000/ghcr.io/NAME:TAG');
    expect(text).toContain('pullgate hosts containerd --mirror $(hostname -f):5000 --out /etc/containerd/certs.d');
  });

  it('counts registries past the first eight instead of naming them all', () => {
    const registries = Array.from({ length: 30 }, (_, i) => `  r${i}.example.com: {}`).join('\n');
    const text = startSummary(config(`registries:\n${registries}\n`), { workers: 1, workersReason: undefined });
    expect(text).toContain('  registries: r0.example.com, r1.example.com, r2.example.com, r3.example.com, r4.example.com, r5.example.com, r6.example.com, r7.example.com and 22 more\n');
  });

  it('prints only on a terminal: a pipe or a log collector gets the JSON logs alone', () => {
    const cfg = config('registries:\n  ghcr.io: {}\n');
    const facts = { workers: 1, workersReason: undefined };
    for (const isTTY of [false, undefined]) {
      const out = output(isTTY);
      expect(printStartSummary(out, cfg, facts)).toBe(false);
      expect(out.text).toBe('');
    }
    const tty = output(true);
    expect(printStartSummary(tty, cfg, facts)).toBe(true);
    expect(tty.text).toBe(startSummary(cfg, facts));
  });
});
