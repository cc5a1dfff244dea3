import type { Dispatcher } from 'undici';
import type { Clock } from '../../core/deps.js';
import { jwtExpiry } from '../jwt.js';
import { CachedToken } from './cached-token.js';
import { fetchJson, numberField, stringField } from './http-json.js';
import type { Found, Lookup, Target } from './lookup.js';
import type { HostTokens } from '../../core/host-tokens.js';

/** Azure Container Registry hosts, public and sovereign clouds. */
const ACR_HOST = /^[a-z0-9]+\.azurecr\.(?:io|cn|us|de)(?::\d+)?$/i;
/** The username ACR expects beside a refresh token. */
export const ACR_TOKEN_USER = '00000000-0000-0000-0000-000000000000';
const ACR_RESOURCE = 'https://containerregistry.azure.net';
const IMDS = 'http://169.254.169.254/metadata/identity/oauth2/token';

/** True for `<name>.azurecr.io` (and sovereign-cloud) hosts. */
export function isAcrHost(host: string): boolean {
  return ACR_HOST.test(host);
}

/** An AAD access token for the container-registry resource and how it was obtained. */
async function aadToken(env: NodeJS.ProcessEnv, clock: Clock, dispatcher: Dispatcher | undefined): Promise<{ token: string; expiresAt: number }> {
  const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: clientId, AZURE_CLIENT_SECRET: secret } = env;
  let answer;
  if (tenant && clientId && secret) {
    const authority = (env.AZURE_AUTHORITY_HOST || 'https://login.microsoftonline.com').replace(/\/+$/, '');
    answer = await fetchJson(`${authority}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`, {
      method: 'POST',
      form: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: `${ACR_RESOURCE}/.default` },
      dispatcher,
    });
  } else if (env.IDENTITY_ENDPOINT) {
    const url = new URL(env.IDENTITY_ENDPOINT);
    url.searchParams.set('api-version', '2019-08-01');
    url.searchParams.set('resource', ACR_RESOURCE);
    if (clientId) url.searchParams.set('client_id', clientId);
    answer = await fetchJson(url.toString(), { headers: { metadata: 'true', ...(env.IDENTITY_HEADER ? { 'x-identity-header': env.IDENTITY_HEADER } : {}) }, dispatcher });
  } else {
    const url = new URL(IMDS);
    url.searchParams.set('api-version', '2018-02-01');
    url.searchParams.set('resource', ACR_RESOURCE);
    if (clientId) url.searchParams.set('client_id', clientId);
    answer = await fetchJson(url.toString(), { headers: { metadata: 'true' }, dispatcher });
  }
  const token = stringField(answer.body, 'access_token');
  if (answer.status !== 200 || token === undefined) {
    const code = stringField(answer.body, 'error') ?? '';
    throw new Error(`Azure AD answered ${answer.status}${code ? ` (${code})` : ''} without an access token`);
  }
  const expiresIn = numberField(answer.body, 'expires_in');
  return { token, expiresAt: expiresIn !== undefined ? clock.now() + expiresIn * 1000 : (jwtExpiry(token) ?? clock.now() + 3_600_000) };
}

/**
 * Credentials for Azure Container Registry from Azure AD: a token by client credentials
 * (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`) or managed
 * identity (IMDS, or `IDENTITY_ENDPOINT`), exchanged at `<registry>/oauth2/exchange` for an ACR
 * refresh token, which the token exchange then uses with the refresh_token grant.
 */
export class AcrLookup implements Lookup {
  readonly name: string;
  private readonly refresh: CachedToken;

  constructor(host: string, registryUrl: string, env: NodeJS.ProcessEnv, clock: Clock, dispatcher: Dispatcher | undefined, hostTokens?: HostTokens) {
    const how = env.AZURE_TENANT_ID && env.AZURE_CLIENT_ID && env.AZURE_CLIENT_SECRET ? 'client credentials' : 'managed identity';
    this.name = `Azure AD (${how}) → ${host}/oauth2/exchange`;
    this.refresh = new CachedToken(async () => {
      const aad = await aadToken(env, clock, dispatcher);
      const answer = await fetchJson(`${registryUrl}/oauth2/exchange`, {
        method: 'POST',
        form: { grant_type: 'access_token', service: host, access_token: aad.token, ...(env.AZURE_TENANT_ID ? { tenant: env.AZURE_TENANT_ID } : {}) },
        dispatcher,
      });
      const refreshToken = stringField(answer.body, 'refresh_token');
      if (answer.status !== 200 || refreshToken === undefined) throw new Error(`${host}/oauth2/exchange answered ${answer.status} without a refresh token`);
      return { value: refreshToken, expiresAt: jwtExpiry(refreshToken) ?? Math.min(aad.expiresAt, clock.now() + 3 * 3_600_000) };
    }, clock, hostTokens && { tokens: hostTokens, key: `acr ${host} ${registryUrl}` });
  }

  async find(_target: Target, notes: string[]): Promise<Found | undefined> {
    try {
      const refreshToken = await this.refresh.get();
      return { secret: { kind: 'refresh', username: ACR_TOKEN_USER, refreshToken }, source: `${this.name} (refresh token)`, origin: { kind: 'provider', provider: 'acr' } };
    } catch (err) {
      notes.push(`${this.name}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  invalidate(): void {
    this.refresh.invalidate();
  }
}
