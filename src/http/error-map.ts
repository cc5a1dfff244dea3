import {
  AccessDenied,
  ClientUnauthorized,
  FetchRefused,
  ConfigError,
  LoginThrottled,
  ClientLimited,
  DigestMismatch,
  InvalidName,
  InvalidParameter,
  InvalidReference,
  ManifestRejected,
  NotFound,
  OwnerUnavailable,
  RangeNotSatisfiable,
  NoDefaultRegistry,
  RegistryNotConfigured,
  StatusRefused,
  StorageUnavailable,
  Unsupported,
  UpstreamDenied,
  UpstreamProtocolError,
  UpstreamRateLimited,
  UpstreamUnavailable,
} from '../core/errors.js';

/** The one table of error codes pullgate answers with, and their HTTP status. */
export const ERROR_CODES = {
  BLOB_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  PAGINATION_NUMBER_INVALID: 400,
  RANGE_INVALID: 416,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  NOT_FOUND: 404,
  TOOMANYREQUESTS: 429,
  UPSTREAM_ERROR: 502,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error as it goes on the wire. */
export interface OciError {
  status: number;
  code: ErrorCode;
  message: string;
  detail: Record<string, unknown> | undefined;
  headers: Record<string, string>;
}

function oci(code: ErrorCode, message: string, detail?: Record<string, unknown>, headers: Record<string, string> = {}): OciError {
  return { status: ERROR_CODES[code], code, message, detail, headers };
}

/** Maps any thrown value to the response the client gets; unknown errors become a bare 500. */
export function toOciError(err: unknown): OciError {
  if (err instanceof InvalidName) return oci('NAME_INVALID', err.message);
  if (err instanceof InvalidReference) return oci(err.kind === 'digest' ? 'DIGEST_INVALID' : 'TAG_INVALID', err.message);
  if (err instanceof InvalidParameter) return oci('PAGINATION_NUMBER_INVALID', err.message);
  if (err instanceof RegistryNotConfigured) return oci('NAME_UNKNOWN', err.message, { registry: err.registry });
  if (err instanceof NoDefaultRegistry) return oci('NAME_UNKNOWN', err.message);
  if (err instanceof NotFound) {
    return oci(err.kind === 'blob' ? 'BLOB_UNKNOWN' : err.kind === 'name' ? 'NAME_UNKNOWN' : 'MANIFEST_UNKNOWN', err.message);
  }
  if (err instanceof UpstreamDenied) {
    return oci(err.status === 401 ? 'UNAUTHORIZED' : 'DENIED', err.message, { registry: err.registry, hint: err.hint });
  }
  if (err instanceof AccessDenied) {
    return err.challenge
      ? oci('UNAUTHORIZED', err.message, { rule: err.rule }, { 'www-authenticate': 'Basic realm="pullgate"' })
      : oci('DENIED', err.message, { rule: err.rule });
  }
  if (err instanceof FetchRefused) return oci('DENIED', err.message, { registry: err.registry });
  if (err instanceof StatusRefused) return oci('DENIED', err.message);
  if (err instanceof ClientUnauthorized) return oci('UNAUTHORIZED', err.message, undefined, { 'www-authenticate': 'Basic realm="pullgate"' });
  if (err instanceof ClientLimited) return oci('TOOMANYREQUESTS', err.message, { limit: err.limit }, { 'retry-after': String(err.retryAfterSeconds) });
  if (err instanceof LoginThrottled) return oci('TOOMANYREQUESTS', err.message, undefined, { 'retry-after': String(err.retryAfterSeconds) });
  if (err instanceof UpstreamRateLimited) {
    return oci('TOOMANYREQUESTS', err.message, { registry: err.registry }, err.retryAfter ? { 'retry-after': err.retryAfter } : {});
  }
  if (err instanceof UpstreamUnavailable) {
    return oci(err.reachable ? 'UPSTREAM_ERROR' : 'UNAVAILABLE', err.message, { registry: err.registry });
  }
  if (err instanceof OwnerUnavailable) return oci('UNAVAILABLE', 'a cluster peer did not answer; retry');
  if (err instanceof UpstreamProtocolError) return oci('UPSTREAM_ERROR', err.message, { registry: err.registry });
  if (err instanceof DigestMismatch) {
    return oci('UPSTREAM_ERROR', 'upstream content did not match its digest; nothing was cached', {
      expected: err.expected,
      actual: err.actual,
    });
  }
  if (err instanceof ManifestRejected) return oci('UPSTREAM_ERROR', err.message, { registry: err.registry });
  if (err instanceof Unsupported) return oci('UNSUPPORTED', err.message);
  if (err instanceof RangeNotSatisfiable) return oci('RANGE_INVALID', err.message, undefined, { 'content-range': `bytes */${err.size}` });
  if (err instanceof ConfigError) return oci('UNAVAILABLE', err.message);
  if (err instanceof StorageUnavailable) return oci('UNAVAILABLE', 'the mirror\'s storage is unavailable; see the pullgate log');
  return oci('UNKNOWN', 'internal error; see the pullgate log');
}

/**
 * What kind of failure an error is, for the log line the error handler writes: pullgate refusing the
 * client (access rules, logins, limits) is not an upstream outage, nor a malformed request.
 */
export type FailureKind = 'refused' | 'invalid' | 'not_found' | 'upstream' | 'unavailable' | 'internal';

/** The message of the log line for each kind of failure (the access-log line follows it). */
export const FAILURE_LOG_MESSAGES: Record<FailureKind, string> = {
  refused: 'request refused',
  invalid: 'request invalid',
  not_found: 'not found',
  upstream: 'upstream failed',
  unavailable: 'mirror unavailable',
  internal: 'request failed',
};

/** The kind of a thrown value (see FailureKind); anything unknown is `internal`. */
export function failureKind(err: unknown): FailureKind {
  if (err instanceof AccessDenied || err instanceof FetchRefused || err instanceof ClientUnauthorized || err instanceof ClientLimited || err instanceof LoginThrottled) return 'refused';
  if (
    err instanceof InvalidName ||
    err instanceof InvalidReference ||
    err instanceof InvalidParameter ||
    err instanceof RegistryNotConfigured ||
    err instanceof NoDefaultRegistry ||
    err instanceof Unsupported ||
    err instanceof RangeNotSatisfiable
  ) {
    return 'invalid';
  }
  if (err instanceof NotFound) return 'not_found';
  if (
    err instanceof UpstreamDenied ||
    err instanceof UpstreamRateLimited ||
    err instanceof UpstreamUnavailable ||
    err instanceof UpstreamProtocolError ||
    err instanceof OwnerUnavailable ||
    err instanceof DigestMismatch ||
    err instanceof ManifestRejected
  ) {
    return 'upstream';
  }
  if (err instanceof StorageUnavailable || err instanceof ConfigError) return 'unavailable';
  return 'internal';
}

/** The JSON body of an OCI error response. */
export function errorBody(error: Pick<OciError, 'code' | 'message' | 'detail'>): string {
  return JSON.stringify({ errors: [{ code: error.code, message: error.message, detail: error.detail ?? {} }] });
}
