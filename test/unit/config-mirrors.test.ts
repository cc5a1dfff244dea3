import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfigText } from '../../src/config/load.js';
import { renderConfig } from '../../src/config/mask.js';
import { endpointOrder } from '../../src/config/endpoint-order.js';

const BASE = path.resolve('/srv/pullgate');
const MIRROR_PASSWORD = 'S3cret-mirror-password';

function load(text: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadConfigText> {
  return loadConfigText(text.join('\n'), env, 'mirrors.yaml', BASE);
}

describe('config: registries.<host>.mirrors and rateLimit', () => {
  it('resolves mirrors in order with their own auth (anonymous unless given, tags false unless given) and the reserve', () => {
    const config = load([
      'registries:',
      '  docker.io:',
      '    mirrors:',
      '      - { url: "https://mirror.gcr.io/" }',
      '      - { url: https://hub-cache.corp.example, auth: { type: docker-config, path: auth.json }, tags: true }',
      '    rateLimit: { reserve: 10 }',
      '  ghcr.io: {}',
    ]);
    const hub = config.registries.get('docker.io');
    expect(hub?.mirrors).toEqual([
      { url: 'https://mirror.gcr.io', auth: { type: 'anonymous' }, tags: false },
      { url: 'https://hub-cache.corp.example', auth: { type: 'docker-config', path: path.join(BASE, 'auth.json') }, tags: true },
    ]);
    expect(hub?.reserve).toBe(10);
    expect(config.registries.get('ghcr.io')?.mirrors).toBeUndefined();
    expect(config.registries.get('ghcr.io')?.reserve).toBeUndefined();
  });

  it('refuses unknown keys, bad urls, auth fields the type does not use, and the registry url as a mirror, naming the path', () => {
    expect(() => load(['registries:', '  docker.io: { mirrors: [{ url: https://m.example, trust: true }] }'])).toThrow(/registries\.docker\.io\.mirrors\.0: unknown key "trust"/);
    expect(() => load(['registries:', '  docker.io: { mirrors: [{ url: "https://u:p@m.example" }] }'])).toThrow(/registries\.docker\.io\.mirrors\.0\.url: has the wrong format/);
    expect(() => load(['registries:', '  docker.io: { mirrors: [{ url: https://m.example, auth: { type: anonymous, password: x } }] }'])).toThrow(
      /registries\.docker\.io\.mirrors\[0\]\.auth\.password: not used by auth type "anonymous"/,
    );
    expect(() => load(['registries:', '  docker.io: { mirrors: [{ url: "https://registry-1.docker.io" }] }'])).toThrow(/mirrors\[0\]\.url: is the registry's own url/);
    expect(() => load(['registries:', '  docker.io: { rateLimit: { reserve: -1 } }'])).toThrow(/registries\.docker\.io\.rateLimit\.reserve/);
  });

  it('config check shows the mirrors in order, with their secrets masked', () => {
    const config = load(
      [
        'registries:',
        '  docker.io:',
        '    mirrors:',
        '      - { url: https://mirror.gcr.io }',
        '      - { url: https://hub-cache.corp.example, auth: { type: basic, username: me, password: "${MIRROR_PASSWORD}" }, tags: true }',
        '    rateLimit: { reserve: 5 }',
      ],
      { MIRROR_PASSWORD },
    );
    const text = renderConfig(config);
    expect(text).not.toContain(MIRROR_PASSWORD);
    const rendered = parseYaml(text) as { registries: Record<string, { mirrors: unknown; rateLimit: unknown }> };
    expect(rendered.registries['docker.io']?.mirrors).toEqual([
      { url: 'https://mirror.gcr.io', auth: { type: 'anonymous' }, tags: false },
      { url: 'https://hub-cache.corp.example', auth: { type: 'basic', username: 'me', password: '***' }, tags: true },
    ]);
    expect(rendered.registries['docker.io']?.rateLimit).toEqual({ reserve: 5 });
  });
});

describe('config check: endpointOrder', () => {
  it('lists each registry with mirrors or a reserve, its endpoints in the order they are tried', () => {
    const config = load(['registries:', '  docker.io:', '    mirrors: [{ url: https://mirror.gcr.io }, { url: https://hub-cache.corp.example, tags: true }]', '    rateLimit: { reserve: 10 }', '  ghcr.io: {}']);
    expect(endpointOrder(config)).toEqual([
      'docker.io: tried in order 1. https://registry-1.docker.io (tags and digests), 2. https://mirror.gcr.io (digests only), 3. https://hub-cache.corp.example (tags and digests); 10 pulls of the rate-limit window kept in reserve',
    ]);
  });
});
