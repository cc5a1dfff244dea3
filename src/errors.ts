/**
 * Domain errors thrown below http/. They carry no HTTP meaning; http/error-map.ts alone turns
 * them into OCI error responses.
 */
export abstract class PullgateError extends Error {
  override readonly name: string = this.constructor.name;
}

/** The repository name in the request is not a valid OCI name. */
export class InvalidName extends PullgateError {}

/** A tag or digest in the request is malformed. */
export class InvalidReference extends PullgateError {
  constructor(
    message: string,
    readonly kind: 'tag' | 'digest',
  ) {
    super(message);
  }
}

/** A request parameter (n, last, Range …) is malformed. */
export class InvalidParameter extends PullgateError {}

/** The request names a registry that is not in the config: pullgate is not an open proxy. */
export class RegistryNotConfigured extends PullgateError {
  constructor(readonly registry: string) {
    super(
      `registry ${registry} is not configured; add it under "registries:" in the pullgate config ` +
        `(e.g. registries: { "${registry}": {} }) and restart`,
    );
  }
}

export type NotFoundKind = 'blob' | 'manifest' | 'name';

/** Upstream (or the cache) does not have the object. */
export class NotFound extends PullgateError {
  constructor(
    readonly kind: NotFoundKind,
    message: string,
  ) {
    super(message);
  }
}

/** Upstream refused pullgate's credentials (401) or their permissions (403). */
export class UpstreamDenied extends PullgateError {
  constructor(
    readonly registry: string,
    readonly status: 401 | 403,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** Upstream answered 429. */
export class UpstreamRateLimited extends PullgateError {
  constructor(
    readonly registry: string,
    readonly retryAfter: string | undefined,
  ) {
    super(`${registry} is rate limiting pullgate (429)`);
  }
}

/** Upstream could not be reached, timed out, or answered with a server error. */
export class UpstreamUnavailable extends PullgateError {
  constructor(
    readonly registry: string,
    message: string,
    readonly reachable: boolean,
  ) {
    super(message);
  }
}

/** Upstream answered something pullgate cannot use (bad token response, unsafe realm …). */
export class UpstreamProtocolError extends PullgateError {
  constructor(
    readonly registry: string,
    message: string,
  ) {
    super(message);
  }
}

/** Content did not hash to the digest it was requested by. */
export class DigestMismatch extends PullgateError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`content digest ${actual} does not match requested ${expected}`);
  }
}

/** Upstream sent a manifest pullgate refuses to relay (too large, wrong type). */
export class ManifestRejected extends PullgateError {}

/** The mirror is read-only; push and delete are not supported. */
export class Unsupported extends PullgateError {}

/** The requested byte range cannot be served. */
export class RangeNotSatisfiable extends PullgateError {
  constructor(readonly size: number) {
    super(`requested range is not satisfiable (blob size ${size})`);
  }
}

/** The config file is invalid; message names the path. */
export class ConfigError extends PullgateError {}

/** Describes an unknown thrown value for logs without leaking a stack into responses. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
