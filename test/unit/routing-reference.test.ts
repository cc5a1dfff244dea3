import { describe, expect, it } from 'vitest';
import { InvalidName, InvalidReference } from '../../src/core/errors.js';
import {
  MAX_NAME_LENGTH,
  assertDigest,
  assertRepositoryName,
  looksLikeDigest,
  parseManifestReference,
} from '../../src/routing/reference.js';
import { thrownAs } from './support.js';

const SHA256 = `sha256:${'a1'.repeat(32)}`;
const SHA512 = `sha512:${'0f'.repeat(64)}`;

describe('assertRepositoryName', () => {
  it('accepts names with every allowed separator', () => {
    for (const name of ['alpine', 'library/alpine', 'a.b/c_d/e__f/g-h/i---j', 'x0/9y']) {
      expect(() => {
        assertRepositoryName(name);
      }).not.toThrow();
    }
  });

  it('refuses separators at the edges of a component or doubled dots', () => {
    for (const name of ['-a', 'a-', 'a.', '.a', 'a..b', 'a___b', '_a']) {
      expect(() => {
        assertRepositoryName(name);
      }).toThrow(InvalidName);
    }
  });

  it('names the offending component', () => {
    const err = thrownAs(() => {
      assertRepositoryName('library/Alpine');
    }, InvalidName);
    expect(err.message).toContain('"Alpine"');
  });

  it(`allows ${MAX_NAME_LENGTH} characters and refuses one more`, () => {
    expect(() => {
      assertRepositoryName('a'.repeat(MAX_NAME_LENGTH));
    }).not.toThrow();
    expect(() => {
      assertRepositoryName('a'.repeat(MAX_NAME_LENGTH + 1));
    }).toThrow(InvalidName);
  });
});

describe('parseManifestReference: tags', () => {
  it('accepts a valid tag', () => {
    expect(parseManifestReference('latest')).toEqual({ kind: 'tag', value: 'latest' });
    expect(parseManifestReference('v1.2.3-rc_1')).toEqual({ kind: 'tag', value: 'v1.2.3-rc_1' });
    expect(parseManifestReference('_x')).toEqual({ kind: 'tag', value: '_x' });
  });

  it('accepts 128 characters and refuses 129', () => {
    const max = `v${'1'.repeat(127)}`;
    expect(parseManifestReference(max).kind).toBe('tag');
    const err = thrownAs(() => parseManifestReference(`${max}1`), InvalidReference);
    expect(err.kind).toBe('tag');
  });

  it('refuses a tag starting with "." or "-"', () => {
    expect(thrownAs(() => parseManifestReference('.hidden'), InvalidReference).kind).toBe('tag');
    expect(thrownAs(() => parseManifestReference('-x'), InvalidReference).kind).toBe('tag');
  });

  it('refuses an empty tag and tags with other characters', () => {
    for (const tag of ['', 'a/b', 'a b', 'tag@x', 'é']) {
      expect(thrownAs(() => parseManifestReference(tag), InvalidReference).kind).toBe('tag');
    }
  });

  it('reads a digest-like text without a colon as a tag', () => {
    const hex = 'a1'.repeat(32);
    expect(parseManifestReference(`sha256${hex}`)).toEqual({ kind: 'tag', value: `sha256${hex}` });
  });
});

describe('parseManifestReference and assertDigest: digests', () => {
  it('accepts a sha256 digest', () => {
    expect(parseManifestReference(SHA256)).toEqual({ kind: 'digest', value: SHA256 });
  });

  it('accepts a sha512 digest', () => {
    expect(parseManifestReference(SHA512)).toEqual({ kind: 'digest', value: SHA512 });
  });

  it('refuses upper-case hex', () => {
    const err = thrownAs(() => parseManifestReference(SHA256.toUpperCase().replace('SHA256', 'sha256')), InvalidReference);
    expect(err.kind).toBe('digest');
    expect(err.message).toContain('lower-case hex');
  });

  it('refuses the wrong length for the algorithm', () => {
    expect(thrownAs(() => parseManifestReference(`sha256:${'a'.repeat(63)}`), InvalidReference).kind).toBe('digest');
    expect(thrownAs(() => parseManifestReference(`sha256:${'a'.repeat(65)}`), InvalidReference).kind).toBe('digest');
    expect(() => {
      assertDigest(`sha512:${'a'.repeat(64)}`);
    }).toThrow(/128/);
  });

  it('refuses an unsupported algorithm (md5)', () => {
    const err = thrownAs(() => parseManifestReference(`md5:${'d4'.repeat(16)}`), InvalidReference);
    expect(err.kind).toBe('digest');
    expect(err.message).toContain('not supported');
  });

  it('refuses malformed digests', () => {
    for (const digest of ['sha256:', ':abc', 'sha256:abc:def', 'SHA256:abc']) {
      expect(thrownAs(() => parseManifestReference(digest), InvalidReference).kind).toBe('digest');
    }
  });

  it('refuses non-hex characters of the right length', () => {
    expect(() => {
      assertDigest(`sha256:${'g'.repeat(64)}`);
    }).toThrow(InvalidReference);
  });
});

describe('looksLikeDigest', () => {
  it('is true exactly when the text has a colon', () => {
    expect(looksLikeDigest(SHA256)).toBe(true);
    expect(looksLikeDigest('md5:x')).toBe(true);
    expect(looksLikeDigest('latest')).toBe(false);
  });
});
