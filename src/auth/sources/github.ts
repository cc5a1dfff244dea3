import type { Secret } from '../credential.js';
import { SecretFile } from '../secret-file.js';
import type { Found, Lookup, Target } from './lookup.js';

/** GitHub's container registry. */
export const GHCR_HOST = 'ghcr.io';

/**
 * A GitHub token (PAT with `read:packages`, or Actions' `GITHUB_TOKEN`) used as the Basic password
 * at ghcr.io's token endpoint, which does not check the username (`x` unless configured).
 * The token comes from `auth.token`, `auth.tokenFile`, or the `GITHUB_TOKEN` variable.
 */
export class GithubLookup implements Lookup {
  readonly name: string;
  private readonly file: SecretFile | undefined;

  constructor(
    private readonly options: { username: string | undefined; token: string | undefined; tokenFile: string | undefined },
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.file = options.tokenFile === undefined ? undefined : new SecretFile(options.tokenFile);
    this.name = options.token !== undefined ? 'config auth.token' : this.file ? `token file ${this.file.path}` : 'GITHUB_TOKEN';
  }

  async find(_target: Target, notes: string[]): Promise<Found | undefined> {
    let token = this.options.token;
    if (token === undefined && this.file) {
      try {
        token = await this.file.read();
      } catch (err) {
        notes.push(`cannot read token file ${this.file.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        return undefined;
      }
    }
    token ??= this.env.GITHUB_TOKEN;
    if (token === undefined || token === '') return undefined;
    const username = this.options.username || 'x';
    const secret: Secret = { kind: 'basic', username, password: token };
    return { secret, source: `github (${this.name}, user "${username}")`, origin: { kind: 'provider', provider: 'github' } };
  }
}
