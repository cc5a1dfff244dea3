import type { Dispatcher } from 'undici';
import { basicAuthorization, clientSafeSource } from '../auth/credential.js';
import type { TokenRequest } from '../auth/token-cache.js';
import { parseTokenResponse, type IssuedToken } from '../auth/token-response.js';
import type { Clock } from '../core/deps.js';
import { UpstreamDenied, UpstreamProtocolError, UpstreamUnavailable, describeError } from '../core/errors.js';
import { withinDeadline } from './deadline.js';
import { drain, readBody, send, type HttpResponse } from './http.js';
import type { TokenGrant } from '../auth/pull-observer.js';

/** Largest token response accepted (as ggcr). */
const MAX_TOKEN_BODY = 64 * 1024;
/** OAuth2 client id pullgate announces to token servers. */
export const OAUTH_CLIENT_ID = 'pullgate';
/** POST answers that mean "this server only does the GET flow". */
const POST_FALLBACK_STATUSES = new Set([400, 401, 404, 405]);

export interface ExchangeDeps {
  dispatcher: Dispatcher;
  clock: Clock;
  timeoutMs: number;
  /** `upstream.deadline`: the whole exchange (every request and the answer's body) in all; 0 for none. */
  deadlineMs: number;
}

function tokenUrl(request: TokenRequest, account: string | undefined): string {
  const url = new URL(request.realm);
  if (request.service !== undefined) url.searchParams.append('service', request.service);
  for (const scope of request.scopes) url.searchParams.append('scope', scope);
  if (account !== undefined) url.searchParams.append('account', account);
  return url.toString();
}

async function call(request: TokenRequest, method: 'GET' | 'POST', fn: () => Promise<HttpResponse>): Promise<HttpResponse> {
  try {
    return await fn();
  } catch (err) {
    request.observe?.({ step: 'unreachable', method, url: request.realm, error: err });
    throw new UpstreamUnavailable(
      request.registry,
      `token server ${new URL(request.realm).origin} for ${request.registry} is unreachable: ${describeError(err)}`,
      false,
    );
  }
}

/** How one exchange's requests are sent: the dispatcher, the idle timeout and the deadline's signal. */
interface Sending {
  dispatcher: Dispatcher;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

async function getToken(request: TokenRequest, deps: Sending, authorization: string | undefined, account: string | undefined): Promise<HttpResponse> {
  return call(request, 'GET', () =>
    send(tokenUrl(request, account), {
      method: 'GET',
      headers: authorization === undefined ? {} : { authorization },
      signal: deps.signal,
      dispatcher: deps.dispatcher,
      timeoutMs: deps.timeoutMs,
    }),
  );
}

async function postRefresh(request: TokenRequest, deps: Sending, refreshToken: string): Promise<HttpResponse> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: OAUTH_CLIENT_ID });
  if (request.service !== undefined) form.set('service', request.service);
  if (request.scopes.length > 0) form.set('scope', request.scopes.join(' '));
  return call(request, 'POST', () =>
    send(request.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal: deps.signal,
      dispatcher: deps.dispatcher,
      timeoutMs: deps.timeoutMs,
    }),
  );
}

/** Tells the observer, if any, how the token server answered one request. */
function answered(request: TokenRequest, grant: TokenGrant, method: 'GET' | 'POST', response: HttpResponse): HttpResponse {
  request.observe?.({ step: 'exchange', grant, method, realm: request.realm, status: response.status });
  return response;
}

/**
 * Exchanges a credential for a bearer token at the challenge's realm: GET with Basic for
 * user/password or anonymous; the OAuth2 refresh_token POST for identity tokens, falling back to
 * GET when the server does not speak it.
 */
export function exchangeToken(request: TokenRequest, deps: ExchangeDeps): Promise<IssuedToken> {
  const what = `a token from ${new URL(request.realm).origin}`;
  return withinDeadline(request.registry, what, deps.deadlineMs, undefined, (signal) =>
    exchange(request, { dispatcher: deps.dispatcher, timeoutMs: deps.timeoutMs, signal }, deps.clock),
  );
}

async function exchange(request: TokenRequest, deps: Sending, clock: Clock): Promise<IssuedToken> {
  const { secret } = request.credential;
  let response: HttpResponse;
  // A switch: each kind of secret makes a different request (a bearer token is never exchanged).
  switch (secret.kind) {
    case 'refresh':
      response = answered(request, 'refresh-token', 'POST', await postRefresh(request, deps, secret.refreshToken));
      if (POST_FALLBACK_STATUSES.has(response.status)) {
        drain(response.body);
        const basic = basicAuthorization(secret.username ?? '<token>', secret.refreshToken);
        response = answered(request, 'refresh-token', 'GET', await getToken(request, deps, basic, secret.username));
      }
      break;
    case 'basic':
      response = answered(request, 'basic', 'GET', await getToken(request, deps, basicAuthorization(secret.username, secret.password), secret.username));
      break;
    case 'bearer':
    case 'anonymous':
      response = answered(request, 'anonymous', 'GET', await getToken(request, deps, undefined, undefined));
      break;
  }
  const origin = new URL(request.realm).origin;
  if (response.status === 401 || response.status === 403) {
    drain(response.body);
    throw new UpstreamDenied(
      request.registry,
      response.status,
      `token server ${origin} refused the credentials for ${request.registry} (${response.status})`,
      `credentials from ${clientSafeSource(request.registry, request.credential)} were rejected: check they are current and valid for ${request.registry}`,
      request.credential.source,
    );
  }
  if (response.status < 200 || response.status >= 300) {
    drain(response.body);
    if (response.status >= 500 || response.status === 429) {
      throw new UpstreamUnavailable(request.registry, `token server ${origin} answered ${response.status}`, true);
    }
    throw new UpstreamProtocolError(request.registry, `token server ${origin} answered ${response.status}`);
  }
  try {
    const body = await readBody(response.body, MAX_TOKEN_BODY);
    return parseTokenResponse(JSON.parse(body.toString('utf8')) as unknown, clock.now());
  } catch (err) {
    throw new UpstreamProtocolError(request.registry, `token server ${origin} sent an unusable answer: ${describeError(err)}`);
  }
}
