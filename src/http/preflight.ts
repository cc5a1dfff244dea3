import type { IncomingHttpHeaders } from 'node:http';
import { TLSSocket } from 'node:tls';
import { type AccessControl, safeDefaultRefusal } from '../access/resolve.js';
import type { Subject } from '../access/policy.js';
import { describeRule } from '../access/policy.js';
import type { ClientLimits } from '../access/client-limits.js';
import { AccessDenied, ClientLimited, ClientUnauthorized, FetchRefused, LoginThrottled, NotFound, Unsupported, type DenialReason } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { Route, Router } from '../routing/route.js';
import { loginHeader, type ClientAuth } from '../client-auth/client-auth.js';
import type { RequestFacts } from './request-facts.js';
import { READ_ONLY_MESSAGE, parseV2Path, type V2Target } from './v2-path.js';
import type { RecentEvents } from '../util/recent-events.js';

/** What a request carries that the preflight reads; the same from node:http and from Fastify. */
export interface PreflightRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The TCP peer (login throttling keys on it). */
  address: string;
  /** The connection: a verified client certificate (mutual TLS) names a user. */
  socket: unknown;
  /** The response: an admitted request holds its `clients.limits.concurrency` slot until it closes. */
  response?: ResponseEnd;
}

/** What the preflight needs of a response: whether it has closed, and to hear when it does. */
export interface ResponseEnd {
  readonly closed: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** A /v2/ request that passed: what it asks for, where it goes, and who asks. */
export interface Passed {
  target: V2Target;
  /** Undefined for the base endpoint `/v2/`. */
  route: Route | undefined;
  /** The query string without `?` (empty when none). */
  search: string;
  subject: Subject;
}

export interface PreflightOptions {
  router: Router;
  access: AccessControl;
  /** Set when `clients.htpasswd` is: Basic credentials are checked against it. */
  auth: ClientAuth | undefined;
  metrics: Metrics;
  /** Whether `/v2/` asks a client without credentials to log in (docker sends its login only after that). */
  challengeBase: boolean;
  /** `clients.limits`; undefined when no limit is configured. */
  limits?: ClientLimits | undefined;
  /** Told every refusal, for the status page's recent events. */
  recent?: RecentEvents | undefined;
}

/** The user named by a verified client certificate (mutual TLS), or undefined. */
export function certificateUser(socket: unknown): string | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cn: unknown = socket.getPeerCertificate().subject.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}

/** Calls `release` when the response closes (at once when it already has, or when there is none to wait for). */
function holdUntilClosed(response: ResponseEnd | undefined, release: (() => void) | undefined): void {
  if (release === undefined) return;
  if (response === undefined || response.closed) release();
  else response.once('close', release);
}

function split(url: string): { pathname: string; search: string } {
  const at = url.indexOf('?');
  return at === -1 ? { pathname: url, search: '' } : { pathname: url.slice(0, at), search: url.slice(at + 1) };
}

function denialReason(err: unknown): DenialReason | undefined {
  if (err instanceof AccessDenied) return err.reason;
  if (err instanceof FetchRefused) return 'registry_policy';
  if (err instanceof ClientUnauthorized) return 'unauthenticated';
  if (err instanceof LoginThrottled) return 'throttled';
  if (err instanceof ClientLimited) return 'limited';
  return undefined;
}

/**
 * The one preflight of every `/v2/` request, used by the manifest hot path and by the ordinary
 * Fastify routes alike: authenticate (Basic against htpasswd, else a client certificate, else
 * anonymous) → route the name to (registry, repository) → the registry's fetch filter
 * (`registries.<host>.repositories`) → `clients.access` → the access-log facts; `clients.limits`
 * (rate and concurrency per user or address) count every authenticated request, refused or not, once,
 * on the path that answers it. Manifests by tag
 * and by digest, blobs, tags and referrers all pass here, so a digest cannot bypass a rule.
 */
export class Preflight {
  constructor(private readonly options: PreflightOptions) {}

  /**
   * For the hot path: the same checks without waiting. Undefined when they cannot finish now (a
   * login that needs bcrypt) or when they refuse: the ordinary path then answers, logs and counts.
   */
  now(req: PreflightRequest): Passed | undefined {
    const header = this.options.auth !== undefined ? loginHeader(req.headers.authorization) : undefined;
    let subject: Subject;
    if (header !== undefined) {
      const user = this.options.auth?.userOf(header);
      if (user === undefined) return undefined;
      subject = { user };
    } else {
      subject = { user: certificateUser(req.socket) };
    }
    try {
      return this.authorize(req.method, req.url, subject, header !== undefined);
    } catch {
      return undefined;
    }
  }

  /**
   * For the hot path, once it has an answer to send: takes the request's `clients.limits` share
   * (released when `response` closes). False when the client is over a limit: the ordinary path then
   * refuses it (429), logs and counts, as it does every refusal.
   */
  admit(passed: Passed, req: PreflightRequest): boolean {
    const { limits } = this.options;
    if (limits === undefined) return true;
    const admission = limits.admit(passed.subject.user, req.address);
    if (!admission.ok) return false;
    holdUntilClosed(req.response, admission.release);
    return true;
  }

  /**
   * For the ordinary path: authenticates (bcrypt off-thread, throttled), then authorizes. Fills
   * `facts` as far as it got (user, registry, repository; on a refusal the reason and the rule),
   * counts refusals in pullgate_requests_denied_total, and throws them as domain errors.
   */
  async run(req: PreflightRequest, facts: RequestFacts): Promise<Passed> {
    try {
      const { auth } = this.options;
      // Empty Basic credentials (`Basic Og==`) are no login: the client is anonymous.
      const header = auth !== undefined ? loginHeader(req.headers.authorization) : undefined;
      const user = header !== undefined && auth !== undefined ? await auth.check(header, req.address) : certificateUser(req.socket);
      facts.user = user;
      const admission = this.options.limits?.admit(user, req.address);
      if (admission?.ok === false) throw new ClientLimited(admission.retryAfterSeconds, admission.limit);
      holdUntilClosed(req.response, admission?.release);
      return this.authorize(req.method, req.url, { user }, header !== undefined, facts);
    } catch (err) {
      const reason = denialReason(err);
      if (reason !== undefined) {
        facts.denied = reason;
        if (err instanceof AccessDenied) facts.rule = err.rule;
        if (err instanceof FetchRefused) facts.rule = err.why;
        this.options.metrics.requestsDenied.inc({ reason });
        this.options.recent?.add({ kind: 'refused', reason, registry: facts.registry, repository: facts.repository, user: facts.user });
      }
      throw err;
    }
  }

  /** Route, fetch filter and access rules for an identified subject; throws the refusal. */
  private authorize(method: string, url: string, subject: Subject, credentialsSent: boolean, facts?: RequestFacts): Passed {
    if (method !== 'GET' && method !== 'HEAD') throw new Unsupported(READ_ONLY_MESSAGE);
    const { pathname, search } = split(url);
    const target = parseV2Path(pathname);
    if (target === undefined) throw new NotFound('name', `no such endpoint: ${pathname}`);
    if (facts !== undefined) facts.endpoint = target.endpoint;
    if (target.endpoint === 'base') {
      if (subject.user === undefined && this.options.challengeBase) {
        throw new ClientUnauthorized('missing', 'pullgate asks clients to log in (clients.htpasswd): docker login <mirror>');
      }
      return { target, route: undefined, search, subject };
    }
    const ns = search === '' ? undefined : (new URLSearchParams(search).get('ns') ?? undefined);
    const route = this.options.router.route(target.name, ns);
    if (facts !== undefined) {
      facts.registry = route.registry;
      facts.repository = route.repository;
    }
    const why = this.options.access.filters.get(route.registry)?.verdict(route.repository);
    if (why !== undefined) throw new FetchRefused(route.registry, route.repository, why);
    const name = `${route.registry}/${route.repository}`;
    const { policy } = this.options.access;
    const decision = policy.decide(subject, name);
    if (!decision.allowed) {
      const challenge = subject.user === undefined && !credentialsSent && this.options.auth !== undefined && policy.loginCouldHelp(name);
      const bySafeDefault = decision.rule === undefined && subject.user === undefined && this.options.access.resolved.safeDefault?.refused.includes(route.registry) === true;
      const rule = bySafeDefault ? safeDefaultRefusal(route.registry) : describeRule(decision.rule);
      throw new AccessDenied(name, rule, decision.rule === undefined ? 'no_rule' : 'rule', challenge);
    }
    return { target, route, search, subject };
  }
}
