import type { CredentialOrigin, Secret } from '../auth/credential.js';
import type { UnsetReference } from '../config/interpolate.js';

/** The likely cause of a failure and what to do about it. */
export interface Explanation {
  cause: string;
  fix: string;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

/** The first `code` on an error or its causes (undici wraps socket errors). */
export function errorCode(err: unknown): string | undefined {
  for (let current: unknown = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR_SOCKET')) return code;
  }
  return undefined;
}

/** Explains a failure to connect: DNS, refused, timeout, TLS trust, or plain HTTP spoken to HTTPS. */
export function explainNetworkError(err: unknown, registryKey: string, url: string): Explanation {
  const code = errorCode(err) ?? '';
  const host = new URL(url).host;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') {
    return { cause: `DNS: ${new URL(url).hostname} does not resolve (${code})`, fix: `check the name in registries.${registryKey}.url, your DNS resolver, or a VPN that must be up` };
  }
  if (code === 'ECONNREFUSED') {
    return { cause: `nothing accepts connections at ${host} (ECONNREFUSED)`, fix: `check that the registry runs and listens there, and the port in registries.${registryKey}.url` };
  }
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ENETUNREACH' || code === 'EHOSTUNREACH') {
    return { cause: `${host} cannot be reached (${code})`, fix: 'check the network path: firewall, proxy (HTTPS_PROXY is not used by pullgate), or VPN' };
  }
  if (TLS_CODES.has(code)) {
    return {
      cause: `TLS: the certificate of ${host} is not trusted (${code})`,
      fix: `give the CA that signed it in registries.${registryKey}.ca (a PEM file); for a lab registry only, registries.${registryKey}.insecure: true`,
    };
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || code === 'ECONNRESET') {
    return {
      cause: `TLS handshake with ${host} failed (${code}); the registry may speak plain HTTP`,
      fix: `if it is an HTTP-only registry, set registries.${registryKey}.url: http://${host}`,
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { cause: `cannot connect to ${host}: ${code || message}`, fix: 'check the URL and that the registry is reachable from this machine' };
}

/** Context for explaining a refusal: typed facts from the client's observer, never strings to parse. */
export interface DeniedContext {
  registry: string;
  status: number;
  /** The upstream error message (OCI `errors[0].message`), if any. */
  message: string | undefined;
  /** The kind of secret presented, its description for the operator, and where it came from. */
  kind: Secret['kind'];
  source: string;
  origin: CredentialOrigin;
  reference: string;
  /** Where the refusal came from: the token server or the registry. */
  at: 'token' | 'manifest';
  /** `${VAR}`s under this registry's `auth` that were unset (their values became ""). */
  unset: UnsetReference[];
}

const CGR_ANONYMOUS_TAGS = new Set(['latest', 'latest-dev']);

/** Says which config value an unset `${VAR}` emptied, e.g. `registries.ghcr.io.auth.password comes from ${GITHUB_TOKEN}, which is unset`. */
export function explainUnset(unset: UnsetReference[]): Explanation | undefined {
  if (unset.length === 0) return undefined;
  const said = unset.map((ref) => `${ref.path} comes from \${${ref.variable}}, which is unset`).join('; ');
  const names = [...new Set(unset.map((ref) => ref.variable))];
  return {
    cause: `${said}, so pullgate used an empty value`,
    fix: `set ${names.join(' and ')} in pullgate's environment (sudo and systemd do not pass your shell's variables), or give a default: \${${names[0] ?? 'VAR'}:-value}`,
  };
}

/** Explains a 401/403 specific to the registry and the kind of credential in use. */
export function explainDenied(ctx: DeniedContext): Explanation {
  const { registry, status, message, origin, reference } = ctx;
  const anonymous = ctx.kind === 'anonymous';
  const unset = explainUnset(ctx.unset);
  if (unset) return unset;
  if (registry === 'cgr.dev' && anonymous) {
    const limited = !CGR_ANONYMOUS_TAGS.has(reference) && !reference.includes(':');
    return {
      cause: limited
        ? `cgr.dev serves only :latest and :latest-dev anonymously; :${reference} needs a Chainguard pull token`
        : 'this cgr.dev image is not public: anonymous access is refused',
      fix: 'create a pull token (chainctl auth pull-token) and set registries.cgr.dev.auth: { type: basic, username, password }, or on a developer machine run `chainctl auth configure-docker` (credHelpers "cgr.dev": "cgr")',
    };
  }
  if (message && /authorization token has expired/i.test(message)) {
    return {
      cause: 'the ECR authorization token has expired',
      fix: 'pullgate fetches a new token on the next request; if this repeats, check the machine clock and that the AWS credentials can call ecr:GetAuthorizationToken',
    };
  }
  if (message && /identity not found/i.test(message)) {
    return { cause: `${registry} does not know the identity behind these credentials ("Identity not found")`, fix: 'log out and log in again (for cgr.dev: chainctl auth logout && chainctl auth login), then retry' };
  }
  if (anonymous) {
    const problems = origin.kind === 'none' && origin.problems.length > 0 ? ` (${origin.problems.join('; ')})` : '';
    return {
      cause: `${registry} needs credentials for this repository and none were found${problems}`,
      fix: `log in (docker login ${registry}, or podman login), set PULLGATE_REGISTRY_HOSTNAME/USERNAME/PASSWORD, or configure registries.${registry}.auth in the pullgate config`,
    };
  }
  if (status === 401) {
    return {
      cause: `${ctx.at === 'token' ? 'the token server' : registry} refused the credentials from ${ctx.source}: they are wrong or expired`,
      fix:
        origin.kind === 'credential-helper'
          ? `the login held by docker-credential-${origin.helper} may have expired: log in again (for cgr.dev: chainctl auth configure-docker)`
          : 'renew the password or token (pull tokens and PATs expire silently) and update where it is kept',
    };
  }
  return {
    cause: `${registry} accepted the credentials from ${ctx.source} but they may not pull this repository${message ? ` (${message})` : ''}`,
    fix: 'check the organisation or account the token belongs to, that the account is provisioned for this repository, and the token\'s scope (read:packages for ghcr.io)',
  };
}

/** A warning when running under sudo with root's home: root's credential store is not the user's. */
export function sudoWarning(env: NodeJS.ProcessEnv): string | undefined {
  const user = env.SUDO_USER;
  if (!user || user === 'root') return undefined;
  if (env.HOME !== undefined && env.HOME !== '/root') return undefined;
  return `running under sudo: HOME is /root, so root's docker config and credential store are searched, not ${user}'s; run without sudo, or pass DOCKER_CONFIG=/home/${user}/.docker (sudo -E keeps your environment)`;
}
