import type { Dispatcher } from 'undici';
import type { Clock } from '../../core/deps.js';
import { SecretFile } from '../secret-file.js';
import { CachedToken } from './cached-token.js';
import { fetchJson, numberField, stringField } from './http-json.js';
import type { Found, Lookup, Target } from './lookup.js';
import type { HostTokens } from '../../core/host-tokens.js';

/** gcr.io and its regional hosts, and Artifact Registry's `<location>-docker.pkg.dev`. */
const GOOGLE_HOST = /^(?:(?:[a-z0-9-]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev)(?::\d+)?$/i;
const METADATA_HOST = 'metadata.google.internal';
const TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';

/** True for Google Container Registry and Artifact Registry hosts. */
export function isGoogleHost(host: string): boolean {
  return GOOGLE_HOST.test(host);
}

/**
 * Credentials for GCR / Artifact Registry: a service-account key from
 * `GOOGLE_APPLICATION_CREDENTIALS` as Basic `_json_key` + the JSON, else an access token from the
 * metadata server (`GCE_METADATA_HOST` overrides its address) as Basic `oauth2accesstoken`,
 * cached until shortly before it expires.
 */
export class GcpLookup implements Lookup {
  readonly name: string;
  private readonly keyFile: SecretFile | undefined;
  private readonly metadata: CachedToken;
  private readonly metadataHost: string;

  constructor(env: NodeJS.ProcessEnv, clock: Clock, dispatcher: Dispatcher | undefined, hostTokens?: HostTokens) {
    const keyPath = env.GOOGLE_APPLICATION_CREDENTIALS;
    this.keyFile = keyPath ? new SecretFile(keyPath) : undefined;
    this.metadataHost = env.GCE_METADATA_HOST || METADATA_HOST;
    this.name = this.keyFile ? `GOOGLE_APPLICATION_CREDENTIALS ${this.keyFile.path}` : `GCP metadata server ${this.metadataHost}`;
    this.metadata = new CachedToken(async () => {
      const answer = await fetchJson(`http://${this.metadataHost}${TOKEN_PATH}`, { headers: { 'metadata-flavor': 'Google' }, dispatcher });
      const token = stringField(answer.body, 'access_token');
      if (answer.status !== 200 || token === undefined) throw new Error(`metadata server answered ${answer.status} without an access token`);
      return { value: token, expiresAt: clock.now() + (numberField(answer.body, 'expires_in') ?? 300) * 1000 };
    }, clock, hostTokens && { tokens: hostTokens, key: `gcp metadata ${this.metadataHost}` });
  }

  async find(_target: Target, notes: string[]): Promise<Found | undefined> {
    if (this.keyFile) {
      let key: string;
      try {
        key = await this.keyFile.read();
      } catch (err) {
        notes.push(`cannot read GOOGLE_APPLICATION_CREDENTIALS ${this.keyFile.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        return undefined;
      }
      let type: unknown;
      try {
        type = (JSON.parse(key) as Record<string, unknown>).type;
      } catch {
        type = undefined;
      }
      if (type !== 'service_account') {
        notes.push(`${this.keyFile.path} is not a service-account key (type "${String(type)}"); only service-account JSON keys are used`);
        return undefined;
      }
      return { secret: { kind: 'basic', username: '_json_key', password: key }, source: `service-account key ${this.keyFile.path} (user "_json_key")`, origin: { kind: 'provider', provider: 'gcp' } };
    }
    try {
      const token = await this.metadata.get();
      return { secret: { kind: 'basic', username: 'oauth2accesstoken', password: token }, source: `GCP metadata server ${this.metadataHost} (user "oauth2accesstoken")`, origin: { kind: 'provider', provider: 'gcp' } };
    } catch (err) {
      notes.push(`GCP metadata server ${this.metadataHost}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  invalidate(): void {
    this.metadata.invalidate();
  }
}
