import { clientSafeSource, type Credential } from '../auth/credential.js';

/** Explains a 401/403 from a registry: the likely cause and the fix, specific to the registry; names no account. */
export function deniedHint(registry: string, status: 401 | 403, credential: Credential, upstreamMessage: string | undefined): string {
  const anonymous = credential.secret.kind === 'anonymous';
  if (registry === 'cgr.dev' && anonymous) {
    return 'cgr.dev serves only :latest and :latest-dev anonymously; other tags and private images need a pull token (chainctl auth pull-token) in registries.cgr.dev.auth';
  }
  if (upstreamMessage && /authorization token has expired/i.test(upstreamMessage)) {
    return 'the ECR authorization token expired; pullgate fetches a new one on the next request';
  }
  if (anonymous) {
    return `${registry} needs credentials for this repository: add them under registries.${registry}.auth in the pullgate config`;
  }
  if (status === 401) {
    return `the credentials from ${clientSafeSource(registry, credential)} were not accepted: they may be wrong or expired`;
  }
  return `the credentials from ${clientSafeSource(registry, credential)} are valid but may not pull this repository: check the organisation or the token's scope`;
}
