import { AUTH_TYPES, type AuthType } from '../config/auth-fields.js';
import type { RegistryConfig } from '../config/config.js';
import { ConfigCredentialSource } from './config-source.js';
import type { CredentialSource } from './credential.js';
import { AcrLookup, isAcrHost } from './sources/acr.js';
import { autoLookups } from './sources/auto.js';
import { CGR_HOST, chainguardLookup } from './sources/chainguard.js';
import type { CredentialHelpers } from './sources/credential-helper.js';
import { dockerConfigLookups } from './sources/docker-config.js';
import { EcrLookup, parseEcrHost, sdkEcrApi } from './sources/ecr.js';
import type { EnvEntry } from './sources/env-keychain.js';
import { GcpLookup, isGoogleHost } from './sources/gcp.js';
import { GHCR_HOST, GithubLookup } from './sources/github.js';
import type { KeychainDeps, Lookup } from './sources/lookup.js';
import { RktLookup } from './sources/rkt.js';

/** What a source factory gets besides the registry: deps, and what the keychain parses once per registry. */
export interface SourceContext extends KeychainDeps {
  envEntries: EnvEntry[];
  helpers: CredentialHelpers;
}

/** One auth type: how it builds its credential source and how it describes itself (its fields: config/auth-fields.ts). */
export interface AuthTypeSpec {
  /** One line for `doctor` and the docs. */
  description: string;
  /** The credential source, from config alone (anonymous, basic, token)… */
  source?(registry: RegistryConfig): CredentialSource;
  /** …or the lookups tried in order (pulling anonymously when none has credentials). `host` defaults to the registry's. */
  lookups?(registry: RegistryConfig, context: SourceContext, host?: string): Lookup[];
  /** Under `auto`: true when this type applies to the host on its own (a cloud provider inferred from the host). */
  inferred?(host: string, env: NodeJS.ProcessEnv): boolean;
}

/** The host an ECR lookup asks about: the key when it is an ECR host, else the URL's (a mirror key). */
const ecrHost = (registry: RegistryConfig): string => (parseEcrHost(registry.key) ? registry.key : new URL(registry.url).host);

/** The one table of credential sources per auth type, read by the keychain and the doctor. */
export const AUTH_TYPE_TABLE: Record<AuthType, AuthTypeSpec> = {
  auto: {
    description: 'environment keychain → docker/containers config files → rkt → the cloud provider inferred from the host → anonymous',
    lookups: (registry, context) => autoLookups(registry, context, context.envEntries, context.helpers, inferredLookups(registry, context)),
  },
  anonymous: {
    description: 'no credentials are ever sent',
    source: (registry) => new ConfigCredentialSource(registry),
  },
  basic: {
    description: 'a username and password (or passwordFile), for Basic challenges and the token exchange',
    source: (registry) => new ConfigCredentialSource(registry),
  },
  token: {
    description: 'a static bearer token (token, tokenFile) sent as is, or an OAuth2 identity token for the refresh-token grant',
    source: (registry) => new ConfigCredentialSource(registry),
  },
  'docker-config': {
    description: 'docker config.json / containers auth.json / Kubernetes dockerconfigjson / Mesos docker.tar.gz, with credential helpers',
    lookups: (registry, context) => [
      ...dockerConfigLookups(registry.auth.path, context.env, context.helpers),
      ...(registry.auth.rktPaths ? [new RktLookup(registry.auth.rktPaths)] : []),
    ],
  },
  ecr: {
    description: 'Amazon ECR GetAuthorizationToken with the AWS default credential chain, refreshed at half its 12 h life',
    lookups: (registry, context, host) => [new EcrLookup(host ?? ecrHost(registry), context.ecrApi ?? sdkEcrApi, context.env, context.clock, context.hostTokens)],
    inferred: (host) => parseEcrHost(host) !== undefined,
  },
  gcp: {
    description: 'GCR / Artifact Registry: a service-account key (GOOGLE_APPLICATION_CREDENTIALS) or the metadata server',
    lookups: (_registry, context) => [new GcpLookup(context.env, context.clock, context.dispatcher, context.hostTokens)],
    inferred: (host) => isGoogleHost(host),
  },
  acr: {
    description: 'Azure Container Registry: an Azure AD token (client credentials or managed identity) exchanged for an ACR refresh token',
    lookups: (registry, context, host) => [new AcrLookup(host ?? registry.key, registry.url, context.env, context.clock, context.dispatcher, context.hostTokens)],
    inferred: (host, env) => isAcrHost(host) && Boolean(env.AZURE_CLIENT_ID || env.AZURE_TENANT_ID || env.IDENTITY_ENDPOINT),
  },
  github: {
    description: 'ghcr.io: a PAT with read:packages or Actions\' GITHUB_TOKEN as the Basic password',
    lookups: (registry, context) => [new GithubLookup({ username: registry.auth.username, token: registry.auth.token, tokenFile: registry.auth.tokenFile }, context.env)],
    inferred: (host, env) => host === GHCR_HOST && Boolean(env.GITHUB_TOKEN),
  },
  chainguard: {
    description: 'a Chainguard assumable identity: the workload\'s OIDC token exchanged at the issuer\'s STS for a cgr.dev token',
    lookups: (registry, context) => [chainguardLookup(registry, context)],
    inferred: (host, env) => host === CGR_HOST && Boolean(env.CHAINGUARD_IDENTITY),
  },
};

/** The host of the registry's URL when it differs from its key (a mirror key for an ECR URL …). */
function hostsOf(registry: RegistryConfig): string[] {
  const urlHost = new URL(registry.url).host.toLowerCase();
  return urlHost === registry.key ? [registry.key] : [registry.key, urlHost];
}

/** Under `auto`: the lookups of the first auth type that applies to the registry's host (or URL host) on its own. */
export function inferredLookups(registry: RegistryConfig, context: SourceContext): Lookup[] {
  for (const host of hostsOf(registry)) {
    for (const type of AUTH_TYPES) {
      const spec = AUTH_TYPE_TABLE[type];
      if (spec.inferred?.(host, context.env) && spec.lookups) return spec.lookups(registry, context, host);
    }
  }
  return [];
}
