import type { Dispatcher } from 'undici';
import type { Clock } from '../../core/deps.js';
import { PullgateError } from '../../core/errors.js';
import { ANONYMOUS_SECRET, credential, type Credential, type CredentialOrigin, type CredentialSource, type Secret } from '../credential.js';
import type { HelperRunner } from './credential-helper.js';
import type { EcrApi } from './ecr-api.js';
import type { HostTokens } from '../../core/host-tokens.js';

/** Credentials one place holds for a registry, with a description of that place (never the secret). */
export interface Found {
  secret: Secret;
  source: string;
  origin: CredentialOrigin;
}

/** Where a lookup is made: the registry's host (its config key) and, when known, the repository. */
export interface Target {
  host: string;
  repository: string | undefined;
}

/**
 * One place that may hold credentials (a file, a helper, a cloud API). `find` answers undefined
 * when it has none for the target, so the next place is asked; problems that explain a miss
 * (a helper that is not installed) go to `notes`.
 */
export interface Lookup {
  /** Short name for "searched …" messages, e.g. `docker config /home/u/.docker/config.json`. */
  readonly name: string;
  find(target: Target, notes: string[]): Promise<Found | undefined>;
  /** Drops cached answers (upstream said the credential expired). */
  invalidate?(): void;
}

/** What the credential sources need: env and time, and optionally network and process seams for tests. */
export interface KeychainDeps {
  env: NodeJS.ProcessEnv;
  clock: Clock;
  /** undici dispatcher for cloud metadata / AAD / ACR calls; undici's global one when absent. */
  dispatcher?: Dispatcher;
  /** Runs `docker-credential-*` programs; the real spawner when absent. */
  runHelper?: HelperRunner;
  /** The ECR GetAuthorizationToken call; the AWS SDK when absent. */
  ecrApi?: EcrApi;
  /** rkt auth directories; `/etc/rkt/auth.d` and `/usr/lib/rkt/auth.d` when absent. */
  rktDirs?: string[];
  /** The host's shared tokens (the workers of `serve --workers`): cloud and identity tokens are fetched once for all. */
  hostTokens?: HostTokens;
}

/**
 * Asks lookups in order and uses the first that has credentials; when none has, the registry is
 * pulled anonymously and the credential's source says what was searched and what went wrong.
 */
export class LookupChain implements CredentialSource {
  constructor(
    private readonly host: string,
    private readonly lookups: Lookup[],
    private readonly label: string,
  ) {}

  async get(repository?: string): Promise<Credential> {
    const notes: string[] = [];
    const target: Target = { host: this.host, repository };
    for (const lookup of this.lookups) {
      let found: Found | undefined;
      try {
        found = await lookup.find(target, notes);
      } catch (err) {
        // A domain error (an identity the issuer refused, an unreachable issuer) is the answer
        // for this registry: pulling anonymously instead would only hide it.
        if (err instanceof PullgateError) throw err;
        notes.push(`${lookup.name}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      if (found) return credential(found.secret, found.source, found.origin);
    }
    const searched = this.lookups.length > 0 ? `; searched ${this.lookups.map((l) => l.name).join(', ')}` : '';
    const problems = notes.length > 0 ? `; ${notes.join('; ')}` : '';
    const origin: CredentialOrigin = { kind: 'none', chain: this.label, searched: this.lookups.map((l) => l.name), problems: notes };
    return credential(ANONYMOUS_SECRET, `anonymous (${this.label}: no credentials for ${this.host}${searched}${problems})`, origin);
  }

  invalidate(): void {
    for (const lookup of this.lookups) lookup.invalidate?.();
  }
}
