import { describe, expect, it } from 'vitest';
import { clientFiles } from '../../src/cli/client-config.js';
import { loadConfigText } from '../../src/config/load.js';

const config = loadConfigText(
  'registries:\n  docker.io: {}\n  ghcr.io: {}\n  registry.internal:5000: { url: "http://registry.internal:5000" }\n',
  {},
  'test',
  '/tmp',
);

describe('pullgate hosts', () => {
  it('writes one containerd hosts.toml per registry, pointing at the mirror with the upstream as server', () => {
    const files = clientFiles(config, 'containerd', '127.0.0.1:5000');
    expect(files.map((f) => f.path)).toEqual(['docker.io/hosts.toml', 'ghcr.io/hosts.toml', 'registry.internal:5000/hosts.toml']);
    const hub = files[0]?.content ?? '';
    expect(hub).toContain('server = "https://registry-1.docker.io"');
    expect(hub).toContain('[host."http://127.0.0.1:5000"]');
    expect(hub).toContain('capabilities = ["pull", "resolve"]');
    expect(files[2]?.content).toContain('server = "http://registry.internal:5000"');
  });

  it('gives docker a registry-mirrors entry and podman a path-prefixed mirror per registry', () => {
    const [daemon] = clientFiles(config, 'docker', 'localhost:5000');
    expect(JSON.parse(daemon?.content ?? '{}')).toEqual({ 'registry-mirrors': ['http://localhost:5000'] });
    const [conf] = clientFiles(config, 'podman', 'localhost:5000');
    expect(conf?.content.match(/\[\[registry\.mirror\]\]/g)).toHaveLength(3);
    expect(conf?.content).toContain('location = "localhost:5000/ghcr.io"');
  });
});
