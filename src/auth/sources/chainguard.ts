import type { Dispatcher } from 'undici';
import type { Clock } from '../../core/deps.js';
import { IdentityRefused, UpstreamProtocolError, UpstreamUnavailable } from '../../core/errors.js';
import { jwtClaims, jwtExpiry } from '../jwt.js';
import { CachedToken } from './cached-token.js';
import { fetchJson, stringField } from './http-json.js';
import type { RegistryConfig } from '../../config/config.js';
import type { Found, KeychainDeps, Lookup, Target } from './lookup.js';
import { noTokenSourceHint, oidcTokenSource, type OidcTokenSource } from './oidc-token.js';
import type { HostTokens } from '../../core/host-tokens.js';

/** Chainguard's issuer, whose STS exchanges workload OIDC tokens for registry tokens. */
export const CHAINGUARD_ISSUER = 'https://issuer.enforce.dev';
/** Chainguard's registry host: the audience asked of the STS. */
export const CGR_HOST = 'cgr.dev';
/** The username chainctl's `docker-credential-cgr` hands to docker beside a Chainguard token. */
export const CHAINGUARD_TOKEN_USER = '_token';
/** Lifetime assumed for a registry token that is not a JWT. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

export interface ChainguardOptions {
  /** The identity's UIDP (`<group>/<identity>`), from `chainctl iam identities create`. */
  identity: string;
  issuer: string;
  /** Audience of the OIDC token asked of GitHub Actions; the issuer URL by default (as setup-chainctl). */
  audience: string | undefined;
  token: string | undefined;
  tokenFile: string | undefined;
}

/** A claim as text for messages (`aud` may be a list); claims are not secrets, the token is. */
function claim(claims: Record<string, unknown> | undefined, name: string): string {
  const value = claims?.[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string').join(',');
  return '?';
}

/**
 * Credentials for cgr.dev from a Chainguard assumable identity: the workload's OIDC token (GitHub
 * Actions, a projected token file, or a configured token) is exchanged at `{issuer}/sts/exchange`
 * for a registry token, presented as Basic `_token:<token>` at cgr.dev's token endpoint (as
 * chainctl's credential helper does). The registry token is cached until half its life has
 * passed; concurrent pulls share one exchange. Refusals throw IdentityRefused naming the cause.
 */
export class ChainguardLookup implements Lookup {
  readonly name: string;
  private readonly source: OidcTokenSource | undefined;
  private readonly cached: CachedToken;
  private readonly issuer: string;
  /** Exchanges sent to the issuer, for tests and the doctor. */
  exchanges = 0;

  constructor(
    private readonly registry: string,
    private readonly options: ChainguardOptions,
    env: NodeJS.ProcessEnv,
    private readonly clock: Clock,
    private readonly dispatcher: Dispatcher | undefined,
    hostTokens?: HostTokens,
  ) {
    this.issuer = options.issuer.replace(/\/+$/, '');
    this.source = oidcTokenSource(registry, { token: options.token, tokenFile: options.tokenFile, audience: options.audience ?? this.issuer }, env, dispatcher);
    this.name = `Chainguard identity ${options.identity} (${this.source?.name ?? 'no OIDC token source'} → ${new URL(this.issuer).host}/sts/exchange)`;
    this.cached = new CachedToken(() => this.exchange(), clock, hostTokens && { tokens: hostTokens, key: `chainguard ${registry} ${options.identity} ${this.issuer}` });
  }

  private async exchange(): Promise<{ value: string; expiresAt: number }> {
    if (!this.source) {
      throw new IdentityRefused(
        this.registry,
        'no-token-source',
        `no OIDC token to assume Chainguard identity ${this.options.identity}: not in a GitHub Actions job with an id-token (ACTIONS_ID_TOKEN_REQUEST_URL is unset), and no auth.tokenFile or auth.token is configured`,
        noTokenSourceHint(this.issuer),
      );
    }
    const oidc = await this.source.read();
    const claims = jwtClaims(oidc);
    const who = `subject "${claim(claims, 'sub')}", audience "${claim(claims, 'aud')}", issuer "${claim(claims, 'iss')}"`;
    const exp = jwtExpiry(oidc);
    const now = this.clock.now();
    if (exp !== undefined && exp <= now) {
      throw new IdentityRefused(
        this.registry,
        'expired-token',
        `the OIDC token from ${this.source.name} expired ${Math.round((now - exp) / 1000)} s ago (${who})`,
        'GitHub Actions tokens are fetched fresh, so this means a stale auth.token or a token file that is no longer rotated: check the projected volume (kubelet refreshes it) or the CI variable',
      );
    }
    const url = new URL(`${this.issuer}/sts/exchange`);
    url.searchParams.set('aud', CGR_HOST);
    url.searchParams.set('identity', this.options.identity);
    this.exchanges++;
    let answer;
    try {
      answer = await fetchJson(url.toString(), {
        method: 'POST',
        headers: { authorization: `Bearer ${oidc}`, accept: 'application/json' },
        json: { aud: [CGR_HOST], identity: this.options.identity },
        dispatcher: this.dispatcher,
      });
    } catch (err) {
      throw new UpstreamUnavailable(this.registry, `Chainguard issuer: ${err instanceof Error ? err.message : String(err)}`, false);
    }
    const token = stringField(answer.body, 'token');
    if (answer.status === 200 && token !== undefined) {
      return { value: token, expiresAt: jwtExpiry(token) ?? this.clock.now() + DEFAULT_LIFETIME_MS };
    }
    const said = stringField(answer.body, 'message')?.slice(0, 200);
    const status = `${answer.status}${said ? `: ${said}` : ''}`;
    const where = `${new URL(this.issuer).host}/sts/exchange`;
    if (answer.status === 404 || (said !== undefined && /identity not found|not found/i.test(said))) {
      throw new IdentityRefused(
        this.registry,
        'identity-not-found',
        `${where} does not know identity ${this.options.identity} ("Identity not found", ${status})`,
        `check the identity id (the UIDP printed by \`chainctl iam identities create\`, \`chainctl iam identities list\`) and that it was not deleted; a typo in registries.${this.registry}.auth.identity or CHAINGUARD_IDENTITY gives this`,
      );
    }
    if ((answer.status === 401 || answer.status === 403) && said !== undefined && /expired/i.test(said)) {
      throw new IdentityRefused(this.registry, 'expired-token', `${where} refused the OIDC token from ${this.source.name} as expired (${status}; ${who})`, 'check the clock of this machine and that the token source is refreshed');
    }
    if (answer.status === 401 || answer.status === 403 || answer.status === 400) {
      throw new IdentityRefused(
        this.registry,
        'not-allowed',
        `${where} would not let the OIDC token (${who}) assume identity ${this.options.identity} (${status})`,
        'the identity accepts only tokens whose issuer, subject and audience match its claim_match: an identity limited to a branch (--github-ref) cannot be assumed by pull_request runs (subject repo:<org>/<repo>:pull_request) — run on that branch, or create an identity for the subject shown; for Kubernetes, the projected token\'s audience must be the issuer',
      );
    }
    if (answer.status >= 500 || answer.status === 429) {
      throw new UpstreamUnavailable(this.registry, `${where} answered ${status}`, true);
    }
    throw new UpstreamProtocolError(this.registry, `${where} answered ${status} without a token`);
  }

  async find(_target: Target): Promise<Found | undefined> {
    const token = await this.cached.get();
    return {
      secret: { kind: 'basic', username: CHAINGUARD_TOKEN_USER, password: token },
      source: `${this.name}, user "${CHAINGUARD_TOKEN_USER}"`,
      origin: { kind: 'provider', provider: 'chainguard' },
    };
  }

  invalidate(): void {
    this.cached.invalidate();
  }
}

/**
 * The lookup for a registry: from `auth` for `type: chainguard`, else (under `auto`) from
 * `CHAINGUARD_IDENTITY` and `CHAINGUARD_ISSUER`; undefined under `auto` without the variable.
 */
export function chainguardLookup(registry: RegistryConfig, deps: KeychainDeps): ChainguardLookup {
  const { auth } = registry;
  const configured = auth.type === 'chainguard';
  const options: ChainguardOptions = {
    identity: (configured ? auth.identity : undefined) ?? deps.env.CHAINGUARD_IDENTITY ?? '',
    issuer: (configured ? auth.issuer : undefined) ?? (deps.env.CHAINGUARD_ISSUER || CHAINGUARD_ISSUER),
    audience: configured ? auth.audience : undefined,
    token: configured ? auth.token : undefined,
    tokenFile: configured ? auth.tokenFile : undefined,
  };
  return new ChainguardLookup(registry.key, options, deps.env, deps.clock, deps.dispatcher, deps.hostTokens);
}
