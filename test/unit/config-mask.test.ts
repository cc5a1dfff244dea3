import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../src/config/config.js';
import { loadConfigText } from '../../src/config/load.js';
import { maskSecret, renderConfig } from '../../src/config/mask.js';

const BASE = path.resolve('/srv/pullgate');

const BASIC_PASSWORD = 'S3cret-basic-password';
const GITHUB_TOKEN = 'ghp_S3cretGithubToken0123456789';
const IDENTITY_TOKEN = 'S3cret-identity-refresh-token';

const TEXT = [
  'registries:',
  '  docker.io:',
  '    auth: {type: basic, username: hubuser, password: "${HUB_PASSWORD}"}',
  '  ghcr.io:',
  '    auth: {type: github, username: octocat, token: "${GITHUB_TOKEN}"}',
  '  myacr.azurecr.io:',
  '    auth: {type: token, username: 00000000-0000-0000-0000-000000000000, identityToken: "${ACR_REFRESH}"}',
  '',
].join('\n');

function loaded(): Config {
  return loadConfigText(
    TEXT,
    { HUB_PASSWORD: BASIC_PASSWORD, GITHUB_TOKEN, ACR_REFRESH: IDENTITY_TOKEN },
    'mask.yaml',
    BASE,
  );
}

describe('renderConfig', () => {
  it('prints none of the secrets, and marks each as set', () => {
    const output = renderConfig(loaded());
    expect(output).not.toContain(BASIC_PASSWORD);
    expect(output).not.toContain(GITHUB_TOKEN);
    expect(output).not.toContain(IDENTITY_TOKEN);
    expect(output.match(/\*\*\*/g) ?? []).toHaveLength(3);
  });

  it('keeps the non-secret fields and renders valid YAML', () => {
    const output = renderConfig(loaded());
    const rendered: unknown = parseYaml(output);
    expect(rendered).toMatchObject({
      listen: '127.0.0.1:5000',
      storage: { path: path.join(BASE, 'data'), maxSize: '20.0GiB' },
      cache: { tagTTL: '5m', staleIfError: '1d' },
      upstream: { timeout: '30s', deadline: '30s', maxRedirects: 5 },
      defaultRegistry: 'docker.io',
      registries: {
        'docker.io': {
          url: 'https://registry-1.docker.io',
          auth: { type: 'basic', username: 'hubuser', password: '***' },
        },
        'ghcr.io': { url: 'https://ghcr.io', auth: { type: 'github', username: 'octocat', token: '***' } },
        'myacr.azurecr.io': { auth: { type: 'token', identityToken: '***' } },
      },
    });
  });

  it('does not modify the config it renders', () => {
    const config = loaded();
    renderConfig(config);
    expect(config.registries.get('docker.io')?.auth.password).toBe(BASIC_PASSWORD);
  });

  it('does not print credentials embedded in a registry url', () => {
    const text = 'registries:\n  docker.io: {}\n  reg.example:\n    url: https://robot:S3cretInUrl@reg.example\n';
    let output: string;
    try {
      output = renderConfig(loadConfigText(text, {}, 'url.yaml', BASE));
    } catch (err) {
      // Refusing such a url is fine too, as long as the message does not echo the secret.
      output = err instanceof Error ? err.message : String(err);
    }
    expect(output).not.toContain('S3cretInUrl');
  });
});

describe('maskSecret', () => {
  it('says whether a secret is set, never what it is', () => {
    expect(maskSecret('hunter2')).toBe('***');
    expect(maskSecret('')).toBe('(empty)');
    expect(maskSecret(undefined)).toBeUndefined();
  });
});
