import { readFileSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { ConfigError } from '../core/errors.js';

/** bcrypt (cost 10) of a random string nobody knows: the decoy when the file has no users. */
const DECOY_HASH = '$2b$10$14GNlMoE.Vy6yDG9zjsoz.1W4H62XzLZVmS1FvI/Q3BJWZTiYORqy';

/** Users and bcrypt hashes from an htpasswd file (the format distribution's htpasswd auth reads). */
export class Htpasswd {
  private constructor(private readonly users: Map<string, string>) {}

  /** Reads the file; only bcrypt (`$2y$`, `$2a$`, `$2b$`) entries are accepted, as in distribution. */
  static load(file: string): Htpasswd {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`clients.htpasswd: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const users = new Map<string, string>();
    text.split('\n').forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$/.test(hash)) {
        throw new ConfigError(`clients.htpasswd: ${file} line ${index + 1} is not "user:bcrypt-hash" (create entries with htpasswd -B)`);
      }
      users.set(user, hash);
    });
    return new Htpasswd(users);
  }

  get size(): number {
    return this.users.size;
  }

  /** The user's bcrypt hash; undefined for an unknown user. */
  hash(user: string): string | undefined {
    return this.users.get(user);
  }

  /** A hash to compare against for an unknown user (the first user's, so the cost matches), never a match for a login. */
  get decoyHash(): string {
    return this.users.values().next().value ?? DECOY_HASH;
  }

  /** True when the user exists and the password matches its hash. */
  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined) return false;
    return bcrypt.compare(password, hash);
  }
}
