import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DigestMismatch,
  InvalidName,
  InvalidParameter,
  InvalidReference,
  ManifestRejected,
  NotFound,
  RangeNotSatisfiable,
  RegistryNotConfigured,
  Unsupported,
  UpstreamDenied,
  UpstreamProtocolError,
  UpstreamRateLimited,
  UpstreamUnavailable,
} from '../../src/core/errors.js';
import { ERROR_CODES, errorBody, toOciError, type ErrorCode } from '../../src/http/error-map.js';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;

interface Case {
  name: string;
  error: Error;
  code: ErrorCode;
  status: number;
}

const CASES: Case[] = [
  { name: 'InvalidName', error: new InvalidName('bad name'), code: 'NAME_INVALID', status: 400 },
  { name: 'InvalidReference (digest)', error: new InvalidReference('bad digest', 'digest'), code: 'DIGEST_INVALID', status: 400 },
  { name: 'InvalidReference (tag)', error: new InvalidReference('bad tag', 'tag'), code: 'TAG_INVALID', status: 400 },
  { name: 'InvalidParameter', error: new InvalidParameter('n must be a number'), code: 'PAGINATION_NUMBER_INVALID', status: 400 },
  { name: 'RegistryNotConfigured', error: new RegistryNotConfigured('evil.example'), code: 'NAME_UNKNOWN', status: 404 },
  { name: 'NotFound (blob)', error: new NotFound('blob', 'no blob'), code: 'BLOB_UNKNOWN', status: 404 },
  { name: 'NotFound (manifest)', error: new NotFound('manifest', 'no manifest'), code: 'MANIFEST_UNKNOWN', status: 404 },
  { name: 'NotFound (name)', error: new NotFound('name', 'no repo'), code: 'NAME_UNKNOWN', status: 404 },
  { name: 'UpstreamDenied 401', error: new UpstreamDenied('ghcr.io', 401, 'refused', 'check the token'), code: 'UNAUTHORIZED', status: 401 },
  { name: 'UpstreamDenied 403', error: new UpstreamDenied('cgr.dev', 403, 'forbidden', 'check the org'), code: 'DENIED', status: 403 },
  { name: 'UpstreamRateLimited', error: new UpstreamRateLimited('docker.io', '60'), code: 'TOOMANYREQUESTS', status: 429 },
  { name: 'UpstreamUnavailable (reachable)', error: new UpstreamUnavailable('quay.io', '502 from quay.io', true), code: 'UPSTREAM_ERROR', status: 502 },
  { name: 'UpstreamUnavailable (unreachable)', error: new UpstreamUnavailable('quay.io', 'ECONNREFUSED', false), code: 'UNAVAILABLE', status: 503 },
  { name: 'UpstreamProtocolError', error: new UpstreamProtocolError('gcr.io', 'bad token body'), code: 'UPSTREAM_ERROR', status: 502 },
  { name: 'DigestMismatch', error: new DigestMismatch(DIGEST_A, DIGEST_B), code: 'UPSTREAM_ERROR', status: 502 },
  { name: 'ManifestRejected', error: new ManifestRejected('ghcr.io', 'manifest too large'), code: 'UPSTREAM_ERROR', status: 502 },
  { name: 'Unsupported', error: new Unsupported('read-only'), code: 'UNSUPPORTED', status: 405 },
  { name: 'RangeNotSatisfiable', error: new RangeNotSatisfiable(1234), code: 'RANGE_INVALID', status: 416 },
  { name: 'ConfigError', error: new ConfigError('config: broken'), code: 'UNAVAILABLE', status: 503 },
];

describe('toOciError: one code and status per domain error', () => {
  it.each(CASES)('$name → $code $status', ({ error, code, status }) => {
    const oci = toOciError(error);
    expect(oci.code).toBe(code);
    expect(oci.status).toBe(status);
    expect(oci.status).toBe(ERROR_CODES[oci.code]);
  });
});

describe('toOciError: messages, details and headers', () => {
  it('keeps the domain message for client errors', () => {
    expect(toOciError(new InvalidName('invalid repository name component "X"')).message).toBe(
      'invalid repository name component "X"',
    );
  });

  it('names the registry for RegistryNotConfigured', () => {
    const oci = toOciError(new RegistryNotConfigured('evil.example'));
    expect(oci.detail).toEqual({ registry: 'evil.example' });
    expect(oci.message).toContain('evil.example');
  });

  it('gives the registry and hint for UpstreamDenied, without any WWW-Authenticate', () => {
    const oci = toOciError(new UpstreamDenied('cgr.dev', 403, 'cgr.dev refused pullgate', 'run chainctl auth pull-token'));
    expect(oci.detail).toEqual({ registry: 'cgr.dev', hint: 'run chainctl auth pull-token' });
    expect(oci.headers).toEqual({});
  });

  it('keeps retry-after for UpstreamRateLimited', () => {
    const oci = toOciError(new UpstreamRateLimited('docker.io', '120'));
    expect(oci.headers).toEqual({ 'retry-after': '120' });
    expect(oci.detail).toEqual({ registry: 'docker.io' });
  });

  it('sends no retry-after when upstream gave none', () => {
    expect(toOciError(new UpstreamRateLimited('docker.io', undefined)).headers).toEqual({});
  });

  it('names expected and actual digests for DigestMismatch', () => {
    const oci = toOciError(new DigestMismatch(DIGEST_A, DIGEST_B));
    expect(oci.detail).toEqual({ expected: DIGEST_A, actual: DIGEST_B });
    expect(oci.message).toContain('nothing was cached');
  });

  it('sets content-range for RangeNotSatisfiable', () => {
    expect(toOciError(new RangeNotSatisfiable(1234)).headers).toEqual({ 'content-range': 'bytes */1234' });
  });

  it('maps an unknown Error to a bare 500 that does not leak its message', () => {
    const oci = toOciError(new Error('boom secret'));
    expect(oci.status).toBe(500);
    expect(oci.code).toBe('UNKNOWN');
    expect(oci.message).not.toContain('boom');
    expect(oci.message).not.toContain('secret');
    expect(oci.detail).toBeUndefined();
    expect(oci.headers).toEqual({});
  });

  it('maps thrown non-errors to UNKNOWN', () => {
    expect(toOciError('boom').code).toBe('UNKNOWN');
    expect(toOciError(undefined).code).toBe('UNKNOWN');
    expect(toOciError({ status: 404 }).status).toBe(500);
  });

  it('maps a TypeError (a bug) to UNKNOWN without its text', () => {
    const oci = toOciError(new TypeError("Cannot read properties of undefined (reading 'token')"));
    expect(oci.code).toBe('UNKNOWN');
    expect(oci.message).not.toContain('token');
  });
});

describe('errorBody', () => {
  it('has the OCI shape {"errors":[{code,message,detail}]}', () => {
    const body: unknown = JSON.parse(errorBody(toOciError(new RegistryNotConfigured('evil.example'))));
    expect(body).toEqual({
      errors: [
        {
          code: 'NAME_UNKNOWN',
          message: new RegistryNotConfigured('evil.example').message,
          detail: { registry: 'evil.example' },
        },
      ],
    });
  });

  it('writes an empty detail object when there is no detail', () => {
    const body: unknown = JSON.parse(errorBody({ code: 'NAME_INVALID', message: 'bad', detail: undefined }));
    expect(body).toEqual({ errors: [{ code: 'NAME_INVALID', message: 'bad', detail: {} }] });
  });

  it('the body of an unknown error does not contain its message', () => {
    const text = errorBody(toOciError(new Error('boom secret')));
    expect(text).not.toContain('boom');
    expect(JSON.parse(text)).toMatchObject({ errors: [{ code: 'UNKNOWN' }] });
  });
});
