import { RepositoryFilter } from '../access/fetch-policy.js';
import { chooseChallenge, parseChallenges, type Challenge } from '../auth/challenge.js';
import { basicAuthorization, basicLogin, clientSafeSource, type Credential, type CredentialSource } from '../auth/credential.js';
import { realmRefusal } from '../auth/realm.js';
import { parseScope, pullScope, splitScopes } from '../auth/scope.js';
import type { TokenCache, TokenRequest } from '../auth/token-cache.js';
import type { RegistryConfig } from '../config/config.js';
import { FetchRefused, UpstreamDenied, UpstreamProtocolError, UpstreamUnavailable, describeError } from '../core/errors.js';
import type { Dispatcher } from 'undici';
import { drain, header, send, upstreamErrorMessage, type HttpResponse } from './http.js';
import { withinDeadline } from './deadline.js';
import { deniedHint } from './hints.js';
import type { PullObserver } from '../auth/pull-observer.js';
import { failureReason, statusFailure, type UpstreamOutcomes } from './upstream-outcomes.js';
import type { RedirectPolicy, RedirectScope } from './redirect-policy.js';
import type { RegistryWatch } from './registry-watch.js';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers that may be forwarded to a redirect target (never Authorization). */
const REDIRECT_SAFE_HEADERS = ['accept', 'range', 'user-agent'];

/** undici's and AbortSignal.timeout's errors for a time limit reached (headers, body, connect). */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

function isTimeout(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return err.name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code));
}

/** True when the request was aborted by its client, as opposed to by a time limit. */
function clientGone(signal: AbortSignal | undefined): boolean {
  if (!signal?.aborted) return false;
  const reason: unknown = signal.reason;
  return !(reason instanceof Error && reason.name === 'TimeoutError');
}

export interface UpstreamRequest {
  method: 'GET' | 'HEAD';
  repository: string;
  /** Path below `/v2/<repository>`, e.g. `/manifests/latest`. */
  path: string;
  /** Query string without `?`, already encoded. */
  query?: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Where redirects may lead: `registry` (the default) or `storage` for blobs (see RedirectPolicy). */
  redirects?: RedirectScope;
  /** Told each step (credentials, challenge, token, responses); absent on the serving path, where it costs nothing. */
  observe?: PullObserver;
}

export interface RegistryClientDeps {
  dispatcher: Dispatcher;
  /** Dispatcher for redirect targets off the registry's origin (CDNs, S3): public TLS, no registry CA, sockets vetted by the RedirectPolicy. */
  redirectDispatcher: Dispatcher;
  tokens: TokenCache;
  credentials: CredentialSource;
  timeoutMs: number;
  /** `upstream.deadline`: the total time of an exchange read whole (`fetchWhole`); 0 for none. */
  deadlineMs: number;
  maxRedirects: number;
  /** Decides which redirect targets may be followed. */
  redirectPolicy: RedirectPolicy;
  /** Told how each request ended (metrics and /readyz); absent for doctor. */
  outcomes?: UpstreamOutcomes | undefined;
  /** Told every answer and failure, for the status page and the rate-limit gauges (absent for doctor). */
  watch?: RegistryWatch | undefined;
}

/**
 * Talks to one upstream registry: learns its challenge, injects Basic or per-scope bearer
 * credentials, re-exchanges once on a 401, and follows redirects the RedirectPolicy allows, without
 * Authorization.
 */
export class RegistryClient {
  /** The registry's challenge once learned (from a 401 or the /v2/ ping); null = open registry. */
  private challenge: Challenge | null | undefined;
  /**
   * `registries.<host>.repositories`, checked again here before any request: every path to upstream
   * (client requests, cluster peers, warm, doctor) passes through `request`, so none can go around it.
   */
  private readonly filter: RepositoryFilter | undefined;

  constructor(
    readonly registry: RegistryConfig,
    private readonly deps: RegistryClientDeps,
  ) {
    this.filter = registry.repositories === undefined ? undefined : new RepositoryFilter(registry.key, registry.repositories);
  }

  /**
   * Sends a pull request upstream with credentials; returns the final response (2xx–5xx).
   * `afterExpiry`: the credential was already renewed once after an ECR-style expiry (or must not
   * be: doctor's second request only reads a refusal's message), so a 403 "expired" is final.
   */
  async request(req: UpstreamRequest, afterExpiry = false): Promise<HttpResponse> {
    // Checked before any request (and before the outcome counter: a refusal is no failure of the registry).
    const refused = this.filter?.verdict(req.repository);
    if (refused !== undefined) throw new FetchRefused(this.registry.key, req.repository, refused);
    const { outcomes, watch } = this.deps;
    if (outcomes === undefined && watch === undefined) return this.requestOnce(req, afterExpiry);
    try {
      const response = await this.requestOnce(req, afterExpiry);
      const failure = statusFailure(response.status);
      if (failure === undefined) outcomes?.answered(this.registry.key);
      else outcomes?.failed(this.registry.key, failure);
      return response;
    } catch (err) {
      // A client that went away is no failure of the registry.
      if (!clientGone(req.signal)) {
        outcomes?.failed(this.registry.key, failureReason(err));
        watch?.recordFailure(this.registry.key, describeError(err));
      }
      throw err;
    }
  }

  private async requestOnce(req: UpstreamRequest, afterExpiry: boolean): Promise<HttpResponse> {
    // Not through this.credential(): one async frame less per request on the serving path.
    const credential = await this.deps.credentials.get(req.repository);
    this.deps.watch?.recordCredential(this.registry.key, credential.origin);
    req.observe?.({ step: 'credentials', registry: this.registry.key, kind: credential.secret.kind, source: credential.source, origin: credential.origin });
    const url = `${this.registry.url}/v2/${req.repository}${req.path}${req.query ? `?${req.query}` : ''}`;
    let auth = await this.authorize(req.repository, credential, req.observe);
    let response = await this.send(url, req, auth.header);
    if (response.status === 401) {
      drain(response.body);
      const fresh = chooseChallenge(parseChallenges(response.headers['www-authenticate'])) ?? (await this.probe(req.signal, req.observe)).challenge;
      if (fresh) this.challenge = fresh;
      if (auth.token) this.deps.tokens.invalidate(auth.token);
      auth = await this.authorize(req.repository, credential, req.observe);
      if (auth.header === undefined) throw this.denied(401, credential, undefined, req, url);
      response = await this.send(url, req, auth.header);
      if (response.status === 401) {
        const { message } = await upstreamErrorMessage(response.body);
        if (auth.token) this.deps.tokens.invalidate(auth.token);
        throw this.denied(401, credential, message, req, url);
      }
    }
    if (response.status === 403) {
      const { message } = await upstreamErrorMessage(response.body);
      if (auth.token) this.deps.tokens.invalidate(auth.token);
      if (message && /authorization token has expired/i.test(message)) {
        // ECR: the registry password itself expired; fetch a new one and try once more.
        this.deps.credentials.invalidate();
        if (!afterExpiry) return this.requestOnce(req, true);
      }
      throw this.denied(403, credential, message, req, url);
    }
    return this.followRedirects(response, req);
  }

  /**
   * `request`, then `read` of its answer, within `upstream.deadline` in all: for answers read whole
   * (manifests, tag lists, referrers). Past it the exchange is aborted and UpstreamUnavailable names
   * the registry; blobs, streamed and large, use `request` and the idle timeout only.
   */
  fetchWhole<T>(req: UpstreamRequest, what: string, read: (response: HttpResponse) => Promise<T>): Promise<T> {
    return withinDeadline(this.registry.key, what, this.deps.deadlineMs, req.signal, async (signal) => read(await this.request({ ...req, signal })));
  }

  /** The credential for a repository, as `request` uses it; the observer learns its kind and origin (never the secret). */
  async credential(repository: string, observe?: PullObserver): Promise<Credential> {
    const credential = await this.deps.credentials.get(repository);
    observe?.({ step: 'credentials', registry: this.registry.key, kind: credential.secret.kind, source: credential.source, origin: credential.origin });
    return credential;
  }

  /**
   * `GET /v2/` without credentials, to learn the challenge before the first request (some 401s
   * carry none, e.g. gcr.io); a challenge found is used from then on.
   */
  async probe(signal?: AbortSignal, observe?: PullObserver): Promise<{ status: number; challenge: Challenge | undefined }> {
    const url = `${this.registry.url}/v2/`;
    const response = await this.sendVia(url, { method: 'GET', repository: '', path: '', headers: {}, signal, observe }, {}, this.deps.dispatcher, `${this.registry.key} is unreachable`);
    drain(response.body);
    const challenge = response.status === 401 ? chooseChallenge(parseChallenges(response.headers['www-authenticate'])) : undefined;
    if (challenge) this.challenge = challenge;
    observe?.({ step: 'ping', url, status: response.status, challenge });
    return { status: response.status, challenge };
  }

  private denied(status: 401 | 403, credential: Credential, upstreamMessage: string | undefined, req: UpstreamRequest, url: string): UpstreamDenied {
    req.observe?.({ step: 'denied', method: req.method, url, status, message: upstreamMessage });
    const said = upstreamMessage ? `: ${upstreamMessage}` : '';
    return new UpstreamDenied(
      this.registry.key,
      status,
      `${this.registry.key} refused pullgate's credentials (${status}${said}); credential source: ${clientSafeSource(this.registry.key, credential)}`,
      deniedHint(this.registry.key, status, credential, upstreamMessage),
      credential.source,
    );
  }

  private async send(url: string, req: UpstreamRequest, authorization: string | undefined): Promise<HttpResponse> {
    const headers = { ...req.headers, ...(authorization ? { authorization } : {}) };
    const response = await this.sendVia(url, req, headers, this.deps.dispatcher, `${this.registry.key} is unreachable`);
    this.deps.watch?.recordAnswer(this.registry.key, response.status, response.headers);
    req.observe?.({
      step: 'response',
      method: req.method,
      url,
      status: response.status,
      challenge: response.status === 401 ? chooseChallenge(parseChallenges(response.headers['www-authenticate'])) : undefined,
    });
    return response;
  }

  /** One request; a network failure becomes UpstreamUnavailable unless the client went away. */
  private async sendVia(url: string, req: UpstreamRequest, headers: Record<string, string>, dispatcher: Dispatcher, failure: string): Promise<HttpResponse> {
    try {
      return await send(url, { method: req.method, headers, signal: req.signal, dispatcher, timeoutMs: this.deps.timeoutMs });
    } catch (err) {
      if (clientGone(req.signal)) throw err;
      req.observe?.({ step: 'unreachable', method: req.method, url, error: err });
      throw new UpstreamUnavailable(this.registry.key, `${failure}: ${describeError(err)}`, false, isTimeout(err));
    }
  }

  /** Builds the Authorization header for the known challenge; `token` identifies a cached bearer token. */
  private async authorize(
    repository: string,
    credential: Credential,
    observe: PullObserver | undefined,
  ): Promise<{ header: string | undefined; token?: TokenRequest }> {
    const { secret } = credential;
    if (secret.kind === 'bearer') return { header: `Bearer ${secret.token}` };
    const challenge = this.challenge;
    if (!challenge) return { header: undefined };
    if (challenge.scheme === 'basic') {
      const login = basicLogin(secret);
      return { header: login && basicAuthorization(login.username, login.password) };
    }
    const { realm, service } = challenge.params;
    const scopes = [pullScope(repository), ...splitScopes(challenge.params.scope).filter((scope) => parseScope(scope) === undefined)];
    if (!realm) {
      observe?.({ step: 'token', realm: '', service, scopes, outcome: { result: 'no-realm' } });
      throw new UpstreamProtocolError(this.registry.key, `${this.registry.key} sent a Bearer challenge without a realm`);
    }
    const refusal = realmRefusal(realm, this.registry.url, this.registry.realms);
    if (refusal && secret.kind !== 'anonymous') {
      observe?.({ step: 'token', realm, service, scopes, outcome: { result: 'realm-refused', reason: refusal } });
      throw new UpstreamProtocolError(this.registry.key, `refusing to send credentials for ${this.registry.key}: ${refusal}`);
    }
    const token: TokenRequest = { registry: this.registry.key, realm, service, scopes, credential, observe };
    if (observe === undefined) return { header: `Bearer ${await this.deps.tokens.get(token)}`, token };
    try {
      const issued = await this.deps.tokens.issue(token);
      observe({ step: 'token', realm, service, scopes, outcome: { result: 'issued', expiresAt: issued.expiresAt } });
      return { header: `Bearer ${issued.token}`, token };
    } catch (err) {
      const outcome = err instanceof UpstreamDenied ? { result: 'denied' as const, status: err.status } : { result: 'failed' as const, error: err };
      observe({ step: 'token', realm, service, scopes, outcome });
      throw err;
    }
  }

  /** Follows 30x hops with fresh, unauthenticated requests (S3 rejects a second auth mechanism). */
  private async followRedirects(first: HttpResponse, req: UpstreamRequest): Promise<HttpResponse> {
    let response = first;
    for (let hop = 0; REDIRECT_STATUSES.has(response.status); hop++) {
      const location = header(response.headers, 'location');
      if (location === undefined) return response;
      drain(response.body);
      if (hop >= this.deps.maxRedirects) {
        throw new UpstreamProtocolError(this.registry.key, `${this.registry.key} redirected more than ${this.deps.maxRedirects} times`);
      }
      let target: URL;
      try {
        target = new URL(location, response.url);
      } catch {
        throw new UpstreamProtocolError(this.registry.key, `${this.registry.key} redirected to an invalid URL`);
      }
      await this.allowRedirect(target, req);
      const headers: Record<string, string> = {};
      for (const name of REDIRECT_SAFE_HEADERS) {
        const value = req.headers[name];
        if (value !== undefined) headers[name] = value;
      }
      // Within the registry's origin its own dispatcher (CA, insecure) applies.
      const sameOrigin = target.origin === new URL(this.registry.url).origin;
      response = await this.sendVia(
        target.toString(),
        req,
        headers,
        sameOrigin ? this.deps.dispatcher : this.deps.redirectDispatcher,
        `${this.registry.key} redirected to ${target.host}, which is unreachable`,
      );
    }
    return response;
  }

  /** Throws unless the RedirectPolicy allows following `target`; nothing is sent to a refused target. */
  private async allowRedirect(target: URL, req: UpstreamRequest): Promise<void> {
    let refusal: string | undefined;
    try {
      refusal = await this.deps.redirectPolicy.refusal(target, req.redirects ?? 'registry');
    } catch (err) {
      throw new UpstreamUnavailable(this.registry.key, `${this.registry.key} redirected to ${target.host}, which does not resolve: ${describeError(err)}`, true);
    }
    if (refusal !== undefined) throw new UpstreamProtocolError(this.registry.key, `refusing to follow the redirect: ${refusal}`);
  }
}
