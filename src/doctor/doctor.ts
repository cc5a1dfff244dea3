import type { Challenge } from '../auth/challenge.js';
import { AUTH_TYPE_TABLE } from '../auth/auth-types.js';
import { basicLogin, type Credential } from '../auth/credential.js';
import type { Config, RegistryConfig } from '../config/config.js';
import type { UnsetReference } from '../config/interpolate.js';
import { FetchRefused, IdentityRefused, NoDefaultRegistry, RegistryNotConfigured, UpstreamDenied, UpstreamProtocolError, UpstreamUnavailable, describeError } from '../core/errors.js';
import { DEFAULT_MANIFEST_ACCEPT } from '../proxy/manifests.js';
import { parseManifestReference } from '../routing/reference.js';
import { route, type Route } from '../routing/route.js';
import { drain, header, upstreamErrorMessage, type HttpResponse } from '../upstream/http.js';
import type { PullEvent, PullObserver } from '../auth/pull-observer.js';
import type { RegistryClient } from '../upstream/registry-client.js';
import { createRegistryClient, createTokenCache, type ClientDeps } from '../upstream/upstreams.js';
import { explainDenied, explainNetworkError, explainUnset, sudoWarning, type Explanation } from './explain.js';
import { parseImageRef } from './image-ref.js';
import { checkMirrors } from './mirrors.js';

/** What doctor needs: the keychain's deps and the shared undici dispatcher. */
export type DoctorDeps = ClientDeps;

/** Raised inside a step to stop with an explanation. */
class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly what: string,
    readonly explanation: Explanation,
  ) {
    super(what);
  }
}

/** The cause of a refused identity exchange, in Chainguard's terms. */
function identityCause(err: UpstreamDenied): string {
  if (!(err instanceof IdentityRefused)) return `${err.registry} refused the credentials (${err.status})`;
  switch (err.reason) {
    case 'identity-not-found':
      return 'the issuer does not know this identity ("Identity not found")';
    case 'not-allowed':
      return "the OIDC token's subject or audience is not one the identity accepts";
    case 'expired-token':
      return 'the OIDC token has expired';
    case 'no-token-source':
      return 'there is no OIDC token to exchange';
    case 'token-source-failed':
      return 'the OIDC token could not be obtained';
  }
}

function describeChallenge(challenge: Challenge): string {
  const params = Object.entries(challenge.params).map(([name, value]) => `${name}="${value}"`).join(' ');
  return `${challenge.scheme === 'bearer' ? 'Bearer' : 'Basic'} ${params}`.trim();
}

type Of<S extends PullEvent['step']> = Extract<PullEvent, { step: S }>;

/** What the registry client reported, kept for explaining a failure from facts rather than messages. */
class Steps {
  credentials: Of<'credentials'> | undefined;
  /** The last exchange request since the last token step (how the token was asked for). */
  exchange: Of<'exchange'> | undefined;
  /** How the last token step asked for its token. */
  tokenHow = 'token request';
  token: Of<'token'> | undefined;
  denied: Of<'denied'> | undefined;
  unreachable: Of<'unreachable'> | undefined;

  constructor(
    private readonly line: (step: string, text: string) => void,
    /** The clock token lifetimes are counted against. */
    private readonly now: () => number,
  ) {}

  readonly observe: PullObserver = (event) => {
    switch (event.step) {
      case 'credentials':
        // The client resolves the credential again for each request; say it once.
        if (this.credentials === undefined) this.line('credentials', event.source);
        this.credentials = event;
        return;
      case 'ping':
        if (event.status === 401) this.line('ping', `GET ${event.url} → 401, challenge ${event.challenge ? describeChallenge(event.challenge) : '(none)'}`);
        else if (event.status >= 200 && event.status < 300) this.line('ping', `GET ${event.url} → ${event.status}, no authentication asked`);
        return;
      case 'exchange':
        this.exchange = event;
        return;
      case 'token':
        this.token = event;
        this.tokenHow = this.exchange === undefined && event.outcome.result !== 'issued' ? 'token request' : this.how();
        this.exchange = undefined;
        if (event.outcome.result === 'issued') this.line('token', `${this.tokenHow} ${tokenTarget(event)} → token valid ${Math.round((event.outcome.expiresAt - this.now()) / 1000)} s`);
        return;
      case 'response':
        if (event.status === 401) this.line('manifest', `${event.method} ${event.url} → 401${event.challenge ? `, challenge ${describeChallenge(event.challenge)}` : ''}`);
        return;
      case 'denied':
        this.denied = event;
        return;
      case 'unreachable':
        this.unreachable = event;
        return;
      case 'route':
        this.line('route', `${event.image} → registry ${event.registry} (${event.url}), repository ${event.repository}, reference ${event.reference}`);
        return;
    }
  };

  /** How the pending token is asked for, from the exchange the token server answered (none: a cached token). */
  private how(): string {
    const exchange = this.exchange;
    if (exchange === undefined) return 'cached token';
    if (exchange.grant === 'refresh-token') return exchange.method === 'POST' ? 'POST refresh_token grant' : 'GET with the identity token as Basic (no refresh_token grant)';
    return exchange.grant === 'basic' ? 'GET with Basic' : 'GET anonymous';
  }
}

function tokenTarget(event: Of<'token'>): string {
  const realm = new URL(event.realm);
  return `${realm.origin}${realm.pathname} service=${event.service ?? '(none)'} scope=${event.scopes.join(' ')}`;
}

/** How the credential answers the registry's challenge when no token is exchanged; undefined when one is. */
function directAnswer(credential: Credential, challenge: Challenge | undefined): string | undefined {
  if (credential.secret.kind === 'bearer') return 'registry token from the credential source, sent as is (no exchange)';
  if (challenge?.scheme !== 'basic') return undefined;
  return basicLogin(credential.secret) ? 'Basic challenge: the username and password are sent with each request (no token exchange)' : 'Basic challenge, but no credentials to answer it';
}

/** `${VAR}`s that emptied a value under this registry's `auth`. */
function unsetUnder(config: Config, registry: RegistryConfig): UnsetReference[] {
  const prefix = `registries.${registry.key}.auth`;
  return config.unsetReferences.filter((ref) => ref.path === prefix || ref.path.startsWith(`${prefix}.`));
}

/**
 * Walks how pullgate would pull IMAGE with the registry client the server uses, writing one line
 * per step it reports: route, credential source (never the secret), /v2/ ping and challenge, token
 * exchange and its scope, manifest HEAD. On a failure it writes the likely cause and the fix,
 * explained from the steps' typed facts. Resolves true only when the image is pullable.
 */
export async function runDoctor(image: string, config: Config, deps: DoctorDeps, write: (line: string) => void): Promise<boolean> {
  const line = (step: string, text: string): void => write(`${step.padEnd(12)} ${text}`);
  const sudo = sudoWarning(deps.env);
  const steps = new Steps(line, () => deps.clock.now());
  // Known once routed: the registry's mirrors are asked when its url cannot give the image.
  let fallback: { registry: RegistryConfig; repository: string; reference: string } | undefined;
  try {
    const ref = parseImageRef(image);
    let target: Route;
    try {
      target = route(config, ref.name, undefined);
      parseManifestReference(ref.reference);
    } catch (err) {
      throw new StepFailed('route', describeError(err), {
        cause: `pullgate cannot route ${image}`,
        fix: err instanceof RegistryNotConfigured || err instanceof NoDefaultRegistry ? 'add the registry under "registries:" in the pullgate config' : 'check the image reference ([registry/]name[:tag|@digest])',
      });
    }
    const registry = config.registries.get(target.registry);
    if (!registry) throw new StepFailed('route', `registry ${target.registry} is not configured`, { cause: 'no such registry', fix: 'add it under registries:' });
    steps.observe({ step: 'route', image, registry: registry.key, url: registry.url, repository: target.repository, reference: ref.reference });
    line('auth', `type ${registry.auth.type}: ${AUTH_TYPE_TABLE[registry.auth.type].description}`);
    if (registry.mirrors !== undefined) {
      line('endpoints', `1. ${registry.url} (tags and digests), then ${registry.mirrors.length} mirror(s), each with its own credentials`);
      fallback = { registry, repository: target.repository, reference: ref.reference };
    }
    const unset = unsetUnder(config, registry);
    for (const ref of unset) write(`warning      ${ref.path} comes from \${${ref.variable}}, which is unset`);

    const client = createRegistryClient(registry, config, deps, createTokenCache(config, deps));
    const credential = await resolveCredential(client, target.repository, steps, unset);
    if (sudo && credential.secret.kind === 'anonymous') write(`warning      ${sudo}`);
    const ping = await probe(client, registry, steps);
    const answer = directAnswer(credential, ping.challenge);
    if (answer !== undefined) line('token', answer);

    const manifestUrl = `${registry.url}/v2/${target.repository}/manifests/${ref.reference}`;
    const ask = (method: 'GET' | 'HEAD', final: boolean): Promise<HttpResponse> =>
      client.request({ method, repository: target.repository, path: `/manifests/${ref.reference}`, headers: { accept: DEFAULT_MANIFEST_ACCEPT }, observe: steps.observe }, final);
    const failed = (err: unknown): StepFailed => explainFailure(err, steps, { registry, reference: ref.reference, unset });
    let head: HttpResponse;
    try {
      head = await ask('HEAD', false);
    } catch (err) {
      if (!(err instanceof UpstreamDenied) || steps.denied === undefined) throw failed(err);
      // HEAD has no body: ask again with GET (without renewing anything) for the registry's message.
      try {
        drain((await ask('GET', true)).body);
      } catch (again) {
        if (!(again instanceof UpstreamDenied)) throw failed(again);
      }
      throw failed(err);
    }
    drain(head.body);
    if (head.status === 200) {
      line('manifest', `HEAD ${manifestUrl} → 200 ${header(head.headers, 'content-type') ?? ''} ${header(head.headers, 'docker-content-digest') ?? ''}`.trimEnd());
      if (fallback !== undefined) await checkMirrors(fallback.registry, config, deps, { ...fallback, digest: header(head.headers, 'docker-content-digest') }, line);
      write(`result       ${image} is pullable through pullgate`);
      return true;
    }
    let message: string | undefined;
    if (head.status === 404) {
      let get: HttpResponse;
      try {
        get = await ask('GET', true);
      } catch (err) {
        throw failed(err);
      }
      message = (await upstreamErrorMessage(get.body)).message;
    }
    const said = `HEAD ${manifestUrl} → ${head.status}${message ? ` (${message})` : ''}`;
    if (head.status === 404) {
      throw new StepFailed('manifest', said, {
        cause: `${registry.key} has no ${target.repository}:${ref.reference}${credential.secret.kind === 'anonymous' ? ', or it is private and anonymous access hides it' : ''}`,
        fix: 'check the repository name and tag (Docker Hub official images live under library/)',
      });
    }
    if (head.status === 429) {
      throw new StepFailed('manifest', said, { cause: `${registry.key} is rate limiting this address`, fix: 'authenticate (higher limits) and let pullgate cache; retry later' });
    }
    throw new StepFailed('manifest', said, { cause: `${registry.key} answered ${head.status}`, fix: 'retry later; a 5xx is the registry\'s problem' });
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    line(err.step, `FAILED: ${err.what}`);
    write(`cause        ${err.explanation.cause}`);
    write(`fix          ${err.explanation.fix}`);
    if (sudo) write(`warning      ${sudo}`);
    const via = fallback === undefined ? undefined : await checkMirrors(fallback.registry, config, deps, { ...fallback, digest: undefined }, line);
    if (via !== undefined) {
      write(`result       ${image} is pullable through pullgate from the mirror ${via} while ${fallback?.registry.url ?? 'its url'} cannot give it`);
      return true;
    }
    write(`result       ${image} is NOT pullable through pullgate`);
    return false;
  }
}

/** The credential as the client resolves it; a source that fails (an identity the issuer refused, an unreadable file) stops here. */
async function resolveCredential(client: RegistryClient, repository: string, steps: Steps, unset: UnsetReference[]): Promise<Credential> {
  try {
    return await client.credential(repository, steps.observe);
  } catch (err) {
    const emptied = explainUnset(unset);
    // An identity exchange the issuer refused carries its own cause and fix (IdentityRefused).
    if (err instanceof UpstreamDenied) throw new StepFailed('credentials', err.message, emptied ?? { cause: identityCause(err), fix: err.hint });
    throw new StepFailed('credentials', describeError(err), emptied ?? { cause: 'the credential source could not be read', fix: 'fix the file or variable named above' });
  }
}

/** The client's `/v2/` probe: learns the challenge, or explains why the registry cannot be talked to. */
async function probe(client: RegistryClient, registry: RegistryConfig, steps: Steps): Promise<{ status: number; challenge: Challenge | undefined }> {
  let ping: { status: number; challenge: Challenge | undefined };
  try {
    ping = await client.probe(undefined, steps.observe);
  } catch (err) {
    const lost = steps.unreachable;
    throw new StepFailed('ping', lost ? `${lost.method} ${lost.url}: ${describeError(err)}` : describeError(err), lost ? explainNetworkError(lost.error, registry.key, lost.url) : { cause: describeError(err), fix: 'check the URL and that the registry is reachable from this machine' });
  }
  if (ping.status !== 401 && (ping.status < 200 || ping.status >= 300)) {
    throw new StepFailed('ping', `GET ${registry.url}/v2/ → ${ping.status}`, {
      cause: `${registry.url} does not answer like an OCI registry at /v2/ (${ping.status})`,
      fix: `check registries.${registry.key}.url (Docker Hub's API is https://registry-1.docker.io)`,
    });
  }
  return ping;
}

/** Turns what the client threw into the failed step and its explanation, from the steps it reported. */
function explainFailure(err: unknown, steps: Steps, at: { registry: RegistryConfig; reference: string; unset: UnsetReference[] }): StepFailed {
  const { registry, reference, unset } = at;
  if (err instanceof FetchRefused) {
    return new StepFailed('route', err.message, { cause: `registries.${registry.key}.repositories keeps the mirror from fetching ${err.repository}`, fix: `change registries.${registry.key}.repositories if it should be pulled` });
  }
  const token = steps.token;
  const credentials = steps.credentials;
  const facts = credentials && { kind: credentials.kind, source: credentials.source, origin: credentials.origin, registry: registry.key, reference, unset };
  if (token && token.outcome.result !== 'issued' && (steps.denied === undefined || err instanceof UpstreamProtocolError)) {
    const outcome = token.outcome;
    if (outcome.result === 'realm-refused') {
      const origin = new URL(token.realm).origin;
      return new StepFailed('token', `refusing to send credentials to ${token.realm}: ${outcome.reason}`, {
        cause: `the token realm ${origin} is not on ${registry.key}'s host or registrable domain, so pullgate will not send it credentials`,
        fix: `if that token server is trusted, list it: registries.${registry.key}.realms: ["${origin}/"]`,
      });
    }
    if (outcome.result === 'no-realm') {
      return new StepFailed('token', 'Bearer challenge without a realm', { cause: `${registry.key} sent a Bearer challenge with no realm`, fix: 'the registry is misconfigured; report it to its operator' });
    }
    const what = `${steps.tokenHow} ${token.realm} scope=${token.scopes.join(' ')}: ${describeError(err)}`;
    if (outcome.result === 'denied' && facts) return new StepFailed('token', what, explainDenied({ ...facts, status: outcome.status, message: undefined, at: 'token' }));
    const lost = steps.unreachable;
    return new StepFailed('token', what, lost ? explainNetworkError(lost.error, registry.key, lost.url) : { cause: 'the token exchange failed', fix: 'see the message above' });
  }
  const denied = steps.denied;
  if (err instanceof UpstreamDenied && denied && facts) {
    return new StepFailed('manifest', `HEAD ${denied.url} → ${denied.status}${denied.message ? ` (${denied.message})` : ''}`, explainDenied({ ...facts, status: denied.status, message: denied.message, at: 'manifest' }));
  }
  if (err instanceof UpstreamDenied) return new StepFailed('credentials', err.message, explainUnset(unset) ?? { cause: identityCause(err), fix: err.hint });
  const lost = steps.unreachable;
  if (err instanceof UpstreamUnavailable && lost) return new StepFailed('manifest', `${lost.method} ${lost.url}: ${describeError(err)}`, explainNetworkError(lost.error, registry.key, lost.url));
  return new StepFailed('manifest', describeError(err), { cause: `${registry.key}: ${describeError(err)}`, fix: 'retry later; if it repeats, check the registry\'s status' });
}
