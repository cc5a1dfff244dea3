import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { loadConfigText } from '../../src/config/load.js';
import { renderConfig } from '../../src/config/mask.js';
import { ConfigError } from '../../src/core/errors.js';
import { sharedStoreSpec } from '../../src/storage/factory.js';
import { thrownAs } from './support.js';

const BASE = path.resolve('/srv/pullgate');

function load(text: string): Config {
  return loadConfigText(`registries:\n  docker.io: {}\n${text}`, {}, 'test.yaml', BASE);
}

describe('config: storage.s3', () => {
  it('is absent by default: only the local tier', () => {
    const config = load('');
    expect(config.storage.s3).toBeUndefined();
    expect(sharedStoreSpec(config.storage)).toBeUndefined();
    expect(renderConfig(config)).not.toContain('s3:');
  });

  it('resolves with defaults, a normalised prefix and maxAge parsed', () => {
    const config = load('storage:\n  s3:\n    endpoint: http://127.0.0.1:7480/\n    bucket: pullgate\n    prefix: /cache\n    forcePathStyle: true\n    maxAge: 30d\n');
    expect(config.storage.s3).toEqual({
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      bucket: 'pullgate',
      prefix: 'cache/',
      forcePathStyle: true,
      redirect: false,
      maxAgeMs: 30 * 24 * 3600 * 1000,
    });
    expect(config.storage.path).toBe(path.join(BASE, 'data'));
    expect(sharedStoreSpec(config.storage)).toEqual({ kind: 's3', ...config.storage.s3 });
    expect(renderConfig(config)).toContain('bucket: pullgate');
    expect(renderConfig(config)).toContain('maxAge: 30d');
  });

  it('requires a bucket and names the path of each problem', () => {
    const error = thrownAs(() => load('storage:\n  s3:\n    region: eu-west-1\n    colour: blue\n'), ConfigError);
    expect(error.message).toContain('storage.s3');
    expect(error.message).toMatch(/bucket/);
    expect(error.message).toMatch(/colour/);
  });

  it('refuses an endpoint with credentials in it (keys come from the AWS SDK chain, never the URL)', () => {
    const error = thrownAs(() => load('storage:\n  s3:\n    bucket: b\n    endpoint: http://key:secret@127.0.0.1:7480\n'), ConfigError);
    expect(error.message).toContain('storage.s3.endpoint');
    expect(error.message).not.toContain('secret@');
  });
});
