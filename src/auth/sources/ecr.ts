import type { Clock } from '../../core/deps.js';
import { decodeAuthField } from '../docker-config/parse.js';
import { CachedToken } from './cached-token.js';
import type { EcrApi, EcrToken } from './ecr-api.js';
import type { Found, Lookup, Target } from './lookup.js';
import type { HostTokens } from '../../core/host-tokens.js';

export type { EcrApi, EcrToken };

/** An ECR registry host: account, region, and whether it is a FIPS endpoint. */
export interface EcrHost {
  account: string;
  region: string;
  fips: boolean;
}

/**
 * Private ECR hosts: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, the dual-stack
 * `<account>.dkr-ecr[-fips].<region>.on.aws`, the EU sovereign cloud and the isolated partitions.
 */
const ECR_HOST =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-z0-9][a-z0-9-]*)\.(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;
export const ECR_PUBLIC_HOST = 'public.ecr.aws';

/** Reads account and region from a private ECR host (a port, if any, is ignored). */
export function parseEcrHost(host: string): EcrHost | undefined {
  const match = ECR_HOST.exec(host.toLowerCase().replace(/:\d+$/, ''));
  if (!match) return undefined;
  return { account: match[1] ?? '', region: match[3] ?? '', fips: match[2] !== undefined };
}


/** Static keys when the injected env has them; otherwise undefined, so the SDK's default chain (profiles, SSO, IMDS …) applies. */
function staticCredentials(env: NodeJS.ProcessEnv): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

/** The real call, through the AWS SDK (loaded on first use); `AWS_ENDPOINT_URL_ECR` / `_ECR_PUBLIC` are honoured. */
export const sdkEcrApi: EcrApi = async ({ region, fips, public: isPublic, env }) => {
  const credentials = staticCredentials(env);
  const common = { region, maxAttempts: 2, ...(credentials ? { credentials } : {}) };
  if (isPublic) {
    const { ECRPUBLICClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr-public');
    const endpoint = env.AWS_ENDPOINT_URL_ECR_PUBLIC ?? env.AWS_ENDPOINT_URL;
    const client = new ECRPUBLICClient({ ...common, ...(endpoint ? { endpoint } : {}) });
    try {
      const out = await client.send(new GetAuthorizationTokenCommand({}));
      const data = out.authorizationData;
      if (!data?.authorizationToken) throw new Error('GetAuthorizationToken returned no token');
      return { token: data.authorizationToken, expiresAt: data.expiresAt?.getTime() ?? Date.now() + 3_600_000 };
    } finally {
      client.destroy();
    }
  }
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const endpoint = env.AWS_ENDPOINT_URL_ECR ?? env.AWS_ENDPOINT_URL;
  const client = new ECRClient({ ...common, useFipsEndpoint: fips, ...(endpoint ? { endpoint } : {}) });
  try {
    const out = await client.send(new GetAuthorizationTokenCommand({}));
    const data = out.authorizationData?.[0];
    if (!data?.authorizationToken) throw new Error('GetAuthorizationToken returned no token');
    return { token: data.authorizationToken, expiresAt: data.expiresAt?.getTime() ?? Date.now() + 3_600_000 };
  } finally {
    client.destroy();
  }
};

/**
 * Credentials for Amazon ECR from GetAuthorizationToken (SDK default credential chain), cached
 * by CachedToken: reused until half its life has passed (as amazon-ecr-credential-helper; the
 * API allows 20 calls per second per account and region); after `invalidate()` (ECR's 403
 * "authorization token has expired") the next request fetches a new one; if the API fails, a
 * token that has not yet expired is kept.
 */
export class EcrLookup implements Lookup {
  readonly name: string;
  private readonly token: CachedToken;

  constructor(
    private readonly host: string,
    api: EcrApi,
    env: NodeJS.ProcessEnv,
    clock: Clock,
    hostTokens?: HostTokens,
  ) {
    const parsed = parseEcrHost(host);
    const region = parsed?.region ?? 'us-east-1';
    const isPublic = parsed === undefined;
    this.name = isPublic ? 'ECR Public GetAuthorizationToken (us-east-1)' : `ECR GetAuthorizationToken (account ${parsed.account}, region ${region})`;
    this.token = new CachedToken(async () => {
      const answer = await api({ region, fips: parsed?.fips ?? false, public: isPublic, env });
      return { value: answer.token, expiresAt: answer.expiresAt };
    }, clock, hostTokens && { tokens: hostTokens, key: `ecr ${host}` });
  }

  async find(_target: Target, notes: string[]): Promise<Found | undefined> {
    let token: { value: string; staleAfter: Error | undefined };
    try {
      token = await this.token.read();
    } catch (err) {
      notes.push(`${this.name} failed for ${this.host}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
    const decoded = decodeAuthField(token.value);
    if (!decoded) {
      notes.push(`${this.name} returned a token that is not base64 user:password`);
      return undefined;
    }
    const stale = token.staleAfter ? ', stale token kept after an API error' : '';
    return { secret: { kind: 'basic', ...decoded }, source: `${this.name}, user "${decoded.username}"${stale}`, origin: { kind: 'provider', provider: 'ecr' } };
  }

  invalidate(): void {
    this.token.invalidate();
  }
}
