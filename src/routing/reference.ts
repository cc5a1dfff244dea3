import { InvalidName, InvalidReference } from '../core/errors.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
/** Longest repository name pullgate accepts (distribution's limit). */
export const MAX_NAME_LENGTH = 255;

/** Checks an OCI repository name (`library/alpine`); throws InvalidName with the reason. */
export function assertRepositoryName(name: string): void {
  if (name.length === 0) throw new InvalidName('repository name is empty');
  if (name.length > MAX_NAME_LENGTH) throw new InvalidName(`repository name is longer than ${MAX_NAME_LENGTH} characters`);
  for (const component of name.split('/')) {
    if (!COMPONENT.test(component)) {
      throw new InvalidName(
        `invalid repository name component "${component}": lower-case letters, digits and single separators (. _ __ -) only`,
      );
    }
  }
}

/** True when the text is shaped like a digest (`algorithm:encoded`), valid or not. */
export function looksLikeDigest(reference: string): boolean {
  return reference.includes(':');
}

/** The hash algorithm a digest names: sha512 for `sha512:…`, sha256 otherwise (the default everywhere). */
export function digestAlgorithm(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** Checks a digest; only sha256 and sha512 with lower-case hex of the right length are accepted. */
export function assertDigest(digest: string): void {
  const match = DIGEST.exec(digest);
  const algorithm = match?.[1] ?? '';
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (!match) throw new InvalidReference(`"${digest}" is not a digest (algorithm:hex)`, 'digest');
  if (expected === undefined) throw new InvalidReference(`digest algorithm "${algorithm}" is not supported (sha256, sha512)`, 'digest');
  const encoded = match[2] ?? '';
  if (encoded.length !== expected || !/^[a-f0-9]+$/.test(encoded)) {
    throw new InvalidReference(`${algorithm} digest must be ${expected} lower-case hex characters`, 'digest');
  }
}

/** Checks a manifest reference: a tag or a digest. Returns which it is. */
export function parseManifestReference(reference: string): { kind: 'tag' | 'digest'; value: string } {
  if (looksLikeDigest(reference)) {
    assertDigest(reference);
    return { kind: 'digest', value: reference };
  }
  if (!TAG.test(reference)) {
    throw new InvalidReference(`"${reference}" is not a valid tag (at most 128 of [A-Za-z0-9_.-], not starting with . or -)`, 'tag');
  }
  return { kind: 'tag', value: reference };
}
