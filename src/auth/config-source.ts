import type { RegistryConfig } from '../config/config.js';
import { ConfigError } from '../core/errors.js';
import { ANONYMOUS_SECRET, credential, type Credential, type CredentialSource, type Secret } from './credential.js';
import { SecretFile } from './secret-file.js';

/**
 * Credentials written in the pullgate config for one registry: anonymous, basic (password or
 * passwordFile) and token (static bearer, tokenFile, or an OAuth2 identity token).
 */
export class ConfigCredentialSource implements CredentialSource {
  private readonly file: SecretFile | undefined;

  constructor(private readonly registry: RegistryConfig) {
    const { auth } = registry;
    const file = auth.type === 'basic' ? auth.passwordFile : auth.type === 'token' ? auth.tokenFile : undefined;
    this.file = file === undefined ? undefined : new SecretFile(file);
  }

  private async secret(): Promise<Secret> {
    const { auth } = this.registry;
    switch (auth.type) {
      case 'basic':
        return { kind: 'basic', username: auth.username ?? '', password: auth.password ?? (await this.readFile()) };
      case 'token':
        if (auth.identityToken !== undefined) {
          return { kind: 'refresh', username: auth.username, refreshToken: auth.identityToken };
        }
        return { kind: 'bearer', token: auth.token ?? (await this.readFile()) };
      default:
        return ANONYMOUS_SECRET;
    }
  }

  private async readFile(): Promise<string> {
    if (!this.file) throw new ConfigError(`registries.${this.registry.key}.auth: no secret given`);
    try {
      return await this.file.read();
    } catch (err) {
      throw new ConfigError(
        `registries.${this.registry.key}.auth: cannot read secret file ${this.file.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }

  async get(): Promise<Credential> {
    const { auth, key } = this.registry;
    const secret = await this.secret();
    const who = secret.kind === 'basic' ? `, user "${secret.username}"` : '';
    const where = this.file ? ` from ${this.file.path}` : '';
    const source = auth.type === 'anonymous' ? 'anonymous (auth type "anonymous")' : `config registries.${key}.auth (${auth.type}${who}${where})`;
    return credential(secret, source, { kind: 'config', file: this.file?.path });
  }

  invalidate(): void {
    // Config secrets have nothing cached beyond the file stamp, which re-reads on change.
  }
}
