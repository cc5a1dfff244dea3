import type { Dispatcher } from 'undici';
import { IdentityRefused } from '../../core/errors.js';
import { SecretFile } from '../secret-file.js';
import { fetchJson, stringField } from './http-json.js';

/** Where a workload's OIDC token comes from; `read` returns a fresh token each time it is asked. */
export interface OidcTokenSource {
  /** For messages: `GitHub Actions id-token (audience …)`, `token file /var/run/…`, `config auth.token`. */
  readonly name: string;
  read(): Promise<string>;
}

/** How to get an OIDC token where none was found: the one-line fix for GitHub Actions, Kubernetes and other CI. */
export function noTokenSourceHint(issuer: string): string {
  return (
    'in GitHub Actions give the job `permissions: { id-token: write }` (pull_request runs from forks never get a token); ' +
    `in Kubernetes mount a projected service-account token with audience ${issuer} and set auth.tokenFile; ` +
    'elsewhere pass the CI system\'s OIDC token as auth.token: "${CI_OIDC_TOKEN}"'
  );
}

/** GitHub Actions' id-token endpoint: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=… with the request token, answered `{"value": jwt}`. */
class GithubActionsToken implements OidcTokenSource {
  readonly name: string;

  constructor(
    private readonly registry: string,
    private readonly url: string,
    private readonly requestToken: string,
    private readonly audience: string,
    private readonly dispatcher: Dispatcher | undefined,
  ) {
    this.name = `GitHub Actions id-token (audience ${audience})`;
  }

  async read(): Promise<string> {
    const url = new URL(this.url);
    url.searchParams.set('audience', this.audience);
    const answer = await fetchJson(url.toString(), { headers: { authorization: `bearer ${this.requestToken}`, accept: 'application/json' }, dispatcher: this.dispatcher });
    const token = stringField(answer.body, 'value');
    if (answer.status !== 200 || token === undefined) {
      throw new IdentityRefused(
        this.registry,
        'token-source-failed',
        `GitHub Actions' id-token endpoint answered ${answer.status}${token === undefined ? ' without a token' : ''}`,
        'the job\'s ACTIONS_ID_TOKEN_REQUEST_TOKEN may have expired (it lives as long as the job) or the job lacks `permissions: { id-token: write }`',
      );
    }
    return token;
  }
}

/** A token in a file, re-read when the file changes (a projected Kubernetes service-account token rotates). */
class FileToken implements OidcTokenSource {
  readonly name: string;
  private readonly file: SecretFile;

  constructor(
    private readonly registry: string,
    path: string,
  ) {
    this.file = new SecretFile(path);
    this.name = `token file ${path}`;
  }

  async read(): Promise<string> {
    try {
      return await this.file.read();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new IdentityRefused(this.registry, 'token-source-failed', `cannot read the OIDC token file ${this.file.path} (${code})`, 'check the projected volume is mounted at that path and readable by pullgate');
    }
  }
}

/**
 * Picks the OIDC token source, first that applies: `auth.token` › `auth.tokenFile` › GitHub
 * Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, present only with `id-token: write`).
 * Undefined when there is none.
 */
export function oidcTokenSource(
  registry: string,
  options: { token: string | undefined; tokenFile: string | undefined; audience: string },
  env: NodeJS.ProcessEnv,
  dispatcher: Dispatcher | undefined,
): OidcTokenSource | undefined {
  if (options.token !== undefined && options.token !== '') {
    const token = options.token;
    return { name: 'config auth.token', read: () => Promise.resolve(token) };
  }
  if (options.tokenFile !== undefined) return new FileToken(registry, options.tokenFile);
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (url && requestToken) return new GithubActionsToken(registry, url, requestToken, options.audience, dispatcher);
  return undefined;
}
