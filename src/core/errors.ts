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

/** A name without a registry prefix, and no `defaultRegistry` to send it to. */
export class NoDefaultRegistry extends PullgateError {
  constructor(
    readonly clientName: string,
    readonly registries: string[],
  ) {
    super(
      `"${clientName}" names no registry and no defaultRegistry is configured; prefix the name with a registry ` +
        `(one of ${registries.join(', ')}), or set defaultRegistry in the pullgate config`,
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

/**
 * Upstream refused pullgate's credentials (401) or their permissions (403). `message` and `hint`
 * go to the client and name the credential's kind only; `source` (account, file) goes to the log.
 */
export class UpstreamDenied extends PullgateError {
  constructor(
    readonly registry: string,
    readonly status: 401 | 403,
    message: string,
    readonly hint: string,
    readonly source?: string,
  ) {
    super(message);
  }
}

/** Why an identity token exchange (Chainguard assumable identity) was refused. */
export type IdentityRefusal = 'identity-not-found' | 'not-allowed' | 'expired-token' | 'no-token-source' | 'token-source-failed';

/**
 * The issuer's STS would not exchange the workload's OIDC token for a registry token, or there
 * was no OIDC token to exchange. `reason` lets the doctor explain it without parsing messages.
 */
export class IdentityRefused extends UpstreamDenied {
  constructor(
    registry: string,
    readonly reason: IdentityRefusal,
    message: string,
    hint: string,
  ) {
    super(registry, reason === 'not-allowed' ? 403 : 401, message, hint);
  }
}

/** A client's own credentials for pullgate (clients.htpasswd) are missing, not HTTP Basic, or wrong. */
export class ClientUnauthorized extends PullgateError {
  constructor(
    readonly reason: 'missing' | 'malformed' | 'wrong',
    message: string,
  ) {
    super(message);
  }
}

/** Why a request was refused before any upstream work: the labels of pullgate_requests_denied_total. */
export type DenialReason = 'rule' | 'no_rule' | 'registry_policy' | 'unauthenticated' | 'throttled' | 'limited';

/**
 * `clients.access` refused the subject this repository. `rule` describes the deciding rule only
 * (never the others); `challenge` is true when the client sent no credentials and a login could help.
 */
export class AccessDenied extends PullgateError {
  constructor(
    readonly repository: string,
    readonly rule: string,
    readonly reason: 'rule' | 'no_rule',
    readonly challenge: boolean,
  ) {
    super(
      challenge
        ? `pullgate requires client credentials to pull ${repository} and the request carried none: log in first (docker login <mirror>)`
        : `pullgate's access rules do not allow this client to pull ${repository}`,
    );
  }
}

/** `status.allow` does not list this client: the status page and /api/status are refused it (403). */
export class StatusRefused extends PullgateError {}

/** `registries.<host>.repositories` refuses the repository: the mirror does not fetch it for anyone. */
export class FetchRefused extends PullgateError {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly why: string,
  ) {
    super(`the mirror's policy for registry ${registry} refuses ${repository}: ${why}`);
  }
}

/** Too many failed client logins from one address (or too many being checked): try again later. */
export class LoginThrottled extends PullgateError {
  constructor(
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(message);
  }
}

/** The client is over its `clients.limits` (request rate or requests in flight): try again later. */
export class ClientLimited extends PullgateError {
  constructor(
    readonly retryAfterSeconds: number,
    readonly limit: 'rate' | 'concurrency',
  ) {
    super(
      limit === 'rate'
        ? `this client is over its request rate (clients.limits.rate); try again in ${retryAfterSeconds} s`
        : `this client has too many requests in flight (clients.limits.concurrency); try again in ${retryAfterSeconds} s`,
    );
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
    /** True when it did not answer within `upstream.timeout` (rather than refusing the connection). */
    readonly timedOut = false,
  ) {
    super(message);
  }
}

/**
 * The replica that owns a digest in the cluster did not answer (refused, timed out, failed or answered
 * an error before its body): the asking replica fetches from upstream itself.
 */
export class OwnerUnavailable extends PullgateError {
  constructor(
    readonly owner: string,
    message: string,
    /** False when the owner answered (an error status): it is alive and is not left out of ownership. */
    readonly down = true,
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

/** Upstream sent a manifest pullgate refuses to relay or cache (too large, not JSON, wrong or ambiguous type). */
export class ManifestRejected extends PullgateError {
  constructor(
    readonly registry: string,
    message: string,
  ) {
    super(message);
  }
}

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

/** The storage directory cannot be written (read-only, full, missing, on a virtual file system); message names the path. */
export class StorageUnavailable extends PullgateError {}

/** Describes an unknown thrown value for logs without leaking a stack into responses. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
