import type { Dispatcher } from 'undici';
import { chooseChallenge, parseChallenges, type Challenge } from '../auth/challenge.js';
import { AUTH_TYPE_TABLE } from '../auth/auth-types.js';
import { basicAuthorization, type Credential } from '../auth/credential.js';
import { keychainFor, type KeychainDeps } from '../auth/keychain.js';
import { realmRefusal } from '../auth/realm.js';
import { parseScope, pullScope, splitScopes } from '../auth/scope.js';
import type { Config, RegistryConfig } from '../config/config.js';
import { IdentityRefused, UpstreamDenied, describeError } from '../errors.js';
import { parseManifestReference } from '../routing/reference.js';
import { route, type Route } from '../routing/route.js';
import { drain, header, send, upstreamErrorMessage, type HttpResponse } from '../upstream/http.js';
import { exchangeToken } from '../upstream/token-exchange.js';
import { dispatcherFor } from '../upstream/upstreams.js';
import { explainDenied, explainNetworkError, sudoWarning, type Explanation } from './explain.js';
import { parseImageRef } from './image-ref.js';

/** What doctor needs: the keychain's deps and the shared undici dispatcher. */
export type DoctorDeps = KeychainDeps & { dispatcher: Dispatcher };

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

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

/**
 * Walks how pullgate would pull IMAGE and writes one line per step: route, credential source
 * (never the secret), /v2/ ping and challenge, token exchange and its scope, manifest HEAD. On a
 * failure it writes the likely cause and the fix. Resolves true only when the image is pullable.
 */
export async function runDoctor(image: string, config: Config, deps: DoctorDeps, write: (line: string) => void): Promise<boolean> {
  const line = (step: string, text: string): void => write(`${step.padEnd(12)} ${text}`);
  const sudo = sudoWarning(deps.env);
  try {
    const ref = parseImageRef(image);
    let target: Route;
    try {
      target = route(config, ref.name, undefined);
      parseManifestReference(ref.reference);
    } catch (err) {
      throw new StepFailed('route', describeError(err), {
        cause: `pullgate cannot route ${image}`,
        fix: /not configured/.test(describeError(err)) ? 'add the registry under "registries:" in the pullgate config' : 'check the image reference ([registry/]name[:tag|@digest])',
      });
    }
    const registry = config.registries.get(target.registry);
    if (!registry) throw new StepFailed('route', `registry ${target.registry} is not configured`, { cause: 'no such registry', fix: 'add it under registries:' });
    line('route', `${image} → registry ${registry.key} (${registry.url}), repository ${target.repository}, reference ${ref.reference}`);

    line('auth', `type ${registry.auth.type}: ${AUTH_TYPE_TABLE[registry.auth.type].description}`);
    let credential: Credential;
    try {
      credential = await keychainFor(registry, deps).get(target.repository);
    } catch (err) {
      // An identity exchange the issuer refused carries its own cause and fix (IdentityRefused).
      if (err instanceof UpstreamDenied) throw new StepFailed('credentials', err.message, { cause: identityCause(err), fix: err.hint });
      throw new StepFailed('credentials', describeError(err), { cause: 'the credential source could not be read', fix: 'fix the file or variable named above' });
    }
    line('credentials', credential.source);
    if (sudo && credential.secret.kind === 'anonymous') write(`warning      ${sudo}`);

    const dispatcher = dispatcherFor(registry, deps.dispatcher);
    const timeoutMs = config.upstream.timeoutMs;
    const request = async (step: string, url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<HttpResponse> => {
      try {
        return await send(url, { method, headers, dispatcher, timeoutMs });
      } catch (err) {
        throw new StepFailed(step, `${method} ${url}: ${describeError(err)}`, explainNetworkError(err, registry.key, url));
      }
    };

    const pingUrl = `${registry.url}/v2/`;
    const ping = await request('ping', pingUrl, 'GET', {});
    drain(ping.body);
    let challenge: Challenge | undefined;
    if (ping.status === 401) {
      challenge = chooseChallenge(parseChallenges(ping.headers['www-authenticate']));
      line('ping', `GET ${pingUrl} → 401, challenge ${challenge ? describeChallenge(challenge) : '(none)'}`);
    } else if (ping.status >= 200 && ping.status < 300) {
      line('ping', `GET ${pingUrl} → ${ping.status}, no authentication asked`);
    } else {
      throw new StepFailed('ping', `GET ${pingUrl} → ${ping.status}`, {
        cause: `${registry.url} does not answer like an OCI registry at /v2/ (${ping.status})`,
        fix: `check registries.${registry.key}.url (Docker Hub's API is https://registry-1.docker.io)`,
      });
    }

    const authorization = await authorize(registry, { ...target, reference: ref.reference }, credential, challenge, { ...deps, dispatcher }, timeoutMs, line);
    const manifestUrl = `${registry.url}/v2/${target.repository}/manifests/${ref.reference}`;
    const head = await request('manifest', manifestUrl, 'HEAD', { accept: MANIFEST_ACCEPT, ...(authorization ? { authorization } : {}) });
    drain(head.body);
    if (head.status === 200) {
      line('manifest', `HEAD ${manifestUrl} → 200 ${header(head.headers, 'content-type') ?? ''} ${header(head.headers, 'docker-content-digest') ?? ''}`.trimEnd());
      write(`result       ${image} is pullable through pullgate`);
      return true;
    }
    // HEAD has no body: ask again with GET for the registry's error message.
    let message: string | undefined;
    if (head.status === 401 || head.status === 403 || head.status === 404) {
      const get = await request('manifest', manifestUrl, 'GET', { accept: MANIFEST_ACCEPT, ...(authorization ? { authorization } : {}) });
      message = (await upstreamErrorMessage(get.body)).message;
    }
    const said = `HEAD ${manifestUrl} → ${head.status}${message ? ` (${message})` : ''}`;
    if (head.status === 401 || head.status === 403) {
      throw new StepFailed('manifest', said, explainDenied({ registry: registry.key, status: head.status, message, credential, reference: ref.reference, at: 'manifest' }));
    }
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
    write(`result       ${image} is NOT pullable through pullgate`);
    return false;
  }
}

/** Answers the challenge as pullgate would; returns the Authorization header for the manifest HEAD. */
async function authorize(
  registry: RegistryConfig,
  target: Route & { reference: string },
  credential: Credential,
  challenge: Challenge | undefined,
  /** `dispatcher` is already the registry's own (CA / insecure). */
  deps: DoctorDeps,
  timeoutMs: number,
  line: (step: string, text: string) => void,
): Promise<string | undefined> {
  const { secret } = credential;
  if (secret.kind === 'bearer') {
    line('token', 'registry token from the credential source, sent as is (no exchange)');
    return `Bearer ${secret.token}`;
  }
  if (challenge === undefined) return undefined;
  if (challenge.scheme === 'basic') {
    if (secret.kind === 'basic') {
      line('token', 'Basic challenge: the username and password are sent with each request (no token exchange)');
      return basicAuthorization(secret.username, secret.password);
    }
    if (secret.kind === 'refresh' && secret.username) return basicAuthorization(secret.username, secret.refreshToken);
    line('token', 'Basic challenge, but no credentials to answer it');
    return undefined;
  }
  const realm = challenge.params.realm;
  if (!realm) throw new StepFailed('token', 'Bearer challenge without a realm', { cause: `${registry.key} sent a Bearer challenge with no realm`, fix: 'the registry is misconfigured; report it to its operator' });
  const refusal = realmRefusal(realm, registry.url, registry.realms);
  if (refusal && secret.kind !== 'anonymous') {
    throw new StepFailed('token', `refusing to send credentials to ${realm}: ${refusal}`, {
      cause: `the token realm ${new URL(realm).origin} is not on ${registry.key}'s host or registrable domain, so pullgate will not send it credentials`,
      fix: `if that token server is trusted, list it: registries.${registry.key}.realms: ["${new URL(realm).origin}/"]`,
    });
  }
  const extra = splitScopes(challenge.params.scope).filter((scope) => parseScope(scope) === undefined);
  const scopes = [pullScope(target.repository), ...extra];
  const how = secret.kind === 'refresh' ? 'POST refresh_token grant' : secret.kind === 'basic' ? 'GET with Basic' : 'GET anonymous';
  try {
    const issued = await exchangeToken(
      { registry: registry.key, realm, service: challenge.params.service, scopes, credential },
      { dispatcher: deps.dispatcher, clock: deps.clock, timeoutMs },
    );
    const seconds = Math.round((issued.expiresAt - deps.clock.now()) / 1000);
    line('token', `${how} ${new URL(realm).origin}${new URL(realm).pathname} service=${challenge.params.service ?? '(none)'} scope=${scopes.join(' ')} → token valid ${seconds} s`);
    return `Bearer ${issued.token}`;
  } catch (err) {
    const what = `${how} ${realm} scope=${scopes.join(' ')}: ${describeError(err)}`;
    if (err instanceof UpstreamDenied) {
      throw new StepFailed('token', what, explainDenied({ registry: registry.key, status: err.status, message: undefined, credential, reference: target.reference, at: 'token' }));
    }
    const cause = (err as { cause?: unknown }).cause;
    throw new StepFailed('token', what, cause ? explainNetworkError(cause, registry.key, realm) : { cause: 'the token exchange failed', fix: 'see the message above' });
  }
}
