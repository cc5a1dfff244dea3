/**
 * The config's `auth` block: every auth type, the fields each takes and the checks the schema cannot
 * express. The credential sources built from it live in auth/auth-types.ts, keyed by the same types.
 */
/** Every `auth.type`; each has one row in AUTH_TYPE_TABLE (a missing row is a compile error). */
export const AUTH_TYPES = ['auto', 'anonymous', 'basic', 'token', 'docker-config', 'ecr', 'gcp', 'acr', 'github', 'chainguard'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

/** `registries.<host>.auth` as written in the file (after `${VAR}` interpolation). */
export interface RawAuth {
  type: AuthType;
  username?: string;
  password?: string;
  passwordFile?: string;
  token?: string;
  tokenFile?: string;
  identityToken?: string;
  /** docker-config: an explicit config.json / auth.json / .dockerconfigjson / docker.tar.gz path. */
  path?: string;
  /** chainguard: the assumable identity's id (UIDP). */
  identity?: string;
  /** chainguard: the issuer whose STS exchanges the OIDC token. */
  issuer?: string;
  /** chainguard: the audience asked of GitHub Actions for the OIDC token. */
  audience?: string;
  /** auto / docker-config: rkt `auth.d` directories to read instead of the two fixed ones. */
  rktPaths?: string[];
}

export type AuthField = Exclude<keyof RawAuth, 'type'>;

/** The JSON schema of each auth field, whatever type uses it (the config schema's `auth.properties`). */
export const AUTH_FIELD_SCHEMAS = {
  username: { type: 'string' },
  password: { type: 'string' },
  passwordFile: { type: 'string', minLength: 1 },
  token: { type: 'string' },
  tokenFile: { type: 'string', minLength: 1 },
  identityToken: { type: 'string' },
  path: { type: 'string', minLength: 1 },
  identity: { type: 'string' },
  issuer: { type: 'string', pattern: '^https?://[^/?#@]+/?$' },
  audience: { type: 'string', minLength: 1 },
  rktPaths: { type: 'array', items: { type: 'string', minLength: 1 } },
} as const satisfies Record<AuthField, object>;

/** The fields an auth type accepts besides `type`, and its own checks (each problem names its path under `where`). */
interface AuthFieldSpec {
  fields: readonly AuthField[];
  check?(auth: RawAuth, where: string): string[];
}

function exactlyOne(auth: RawAuth, where: string, fields: AuthField[]): string[] {
  const given = fields.filter((field) => auth[field] !== undefined).length;
  return given === 1 ? [] : [`${where}: give exactly one of ${fields.join(', ')}`];
}

/** The one table of auth-type fields, read by the config schema and the loader (a missing type is a compile error). */
export const AUTH_TYPE_FIELDS: Record<AuthType, AuthFieldSpec> = {
  auto: {
    fields: ['rktPaths'],
  },
  anonymous: {
    fields: [],
  },
  basic: {
    fields: ['username', 'password', 'passwordFile'],
    check: (auth, where) => [
      ...(auth.username === undefined ? [`${where}.username: required for auth type "basic"`] : []),
      ...exactlyOne(auth, where, ['password', 'passwordFile']),
    ],
  },
  token: {
    fields: ['token', 'tokenFile', 'identityToken', 'username'],
    check: (auth, where) => exactlyOne(auth, where, ['token', 'tokenFile', 'identityToken']),
  },
  'docker-config': {
    fields: ['path', 'rktPaths'],
  },
  ecr: {
    fields: [],
  },
  gcp: {
    fields: [],
  },
  acr: {
    fields: [],
  },
  github: {
    fields: ['username', 'token', 'tokenFile'],
  },
  chainguard: {
    fields: ['identity', 'issuer', 'audience', 'token', 'tokenFile'],
    check: (auth, where) => [
      ...(auth.identity === undefined || auth.identity === '' ? [`${where}.identity: required for auth type "chainguard" (the id from chainctl iam identities create)`] : []),
      ...(auth.token !== undefined && auth.tokenFile !== undefined ? [`${where}: give at most one of token, tokenFile`] : []),
    ],
  },
};

/** Config problems of one `auth` block: fields its type does not use, and the type's own checks. */
export function authProblems(key: string, auth: RawAuth, where = `registries.${key}.auth`): string[] {
  const spec = AUTH_TYPE_FIELDS[auth.type];
  const unused = Object.keys(auth)
    .filter((field) => field !== 'type' && !spec.fields.includes(field as AuthField))
    .map((field) => `${where}.${field}: not used by auth type "${auth.type}"`);
  return [...unused, ...(spec.check?.(auth, where) ?? [])];
}
