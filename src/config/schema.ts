import { Ajv, type ErrorObject } from 'ajv';
import { AUTH_FIELD_SCHEMAS, AUTH_TYPES, type RawAuth } from './auth-fields.js';

export { AUTH_TYPES, type AuthType, type RawAuth } from './auth-fields.js';

export interface RawRegistry {
  url?: string;
  auth?: RawAuth;
  /** Extra token realms (URL prefixes) that may receive this registry's credentials. */
  realms?: string[];
  /** Redirect targets (URL prefixes, `https://*.example.com/…` allowed) trusted besides the registry's own origin. */
  redirects?: string[];
  /** PEM file with the CA that signs this registry's certificate. */
  ca?: string;
  /** Accept any certificate (lab registries only). */
  insecure?: boolean;
  /** What the mirror itself may fetch from this registry: patterns over its repository names. */
  repositories?: { allow?: string[]; deny?: string[] };
  /** Fallback endpoints tried in order after `url` fails; `auth` applies to `url` only. */
  mirrors?: RawMirror[];
  /** `reserve`: pulls of the upstream's rate-limit window kept in reserve (0: rationing off). */
  rateLimit?: { reserve: number };
}

/** One fallback endpoint of a registry: content by digest only unless `tags: true`. */
export interface RawMirror {
  url: string;
  auth?: RawAuth;
  tags: boolean;
}

/** One rule of `clients.access`: subjects and exactly one of allow/deny (checked in load.ts). */
export interface RawAccessRule {
  subjects: string[];
  allow?: string[];
  deny?: string[];
}

/** `storage.s3`: the shared S3-compatible store (credentials from the AWS SDK's default chain). */
export interface RawS3 {
  endpoint?: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  redirect: boolean;
  maxAge?: string;
}

/** The config document after schema validation and defaulting. */
export interface RawConfig {
  listen: string;
  storage: { path: string; maxSize: string; s3?: RawS3 };
  cache: { tagTTL: string; staleIfError: string };
  upstream: { timeout: string; deadline: string; maxRedirects: number };
  defaultRegistry?: string;
  registries: Record<string, RawRegistry | null>;
  aliases: Record<string, string>;
  clients: {
    /** Unset means "the config says nothing": the safe default of access-resolve.ts applies. */
    anonymous?: boolean;
    htpasswd?: string;
    groups: Record<string, string[]>;
    access?: RawAccessRule[];
    loginThrottle: { failures: number; lockout: string; maxLockout: string };
    /** Per-client request rate and concurrency; off unless set. */
    limits?: { rate?: number; burst?: number; concurrency?: number; clients: number };
    connections: { max: number; perAddress: number; headersTimeout: string; keepAlive: string; idle: string };
  };
  log: { level: string; access: 'all' | 'sampled' | 'misses' };
  /** `/metrics` behind a login, or on a listener of its own. */
  metrics: { auth?: boolean; listen?: string };
  /** Who may see the status page and /api/status on an exposed listener. */
  status: { allow?: string[] };
  /** PEM files for HTTPS on the listener; `clientCA` turns on mutual TLS. */
  tls?: { cert: string; key: string; clientCA?: string };
  /** Replicas that share one store and one upstream fetch per blob. */
  cluster?: { listen: string; peers: string[]; secret: string; self?: string };
}

const HOST_KEY = '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$';
const LISTEN = '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]*):[0-9]{1,5}$';
/** A peer: `host:port`, `[v6]:port`, or `dns:<name>:port` (every address the name resolves to). */
const PEER = '^(dns:)?(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';
/** A user or group name in clients.groups / clients.access (htpasswd user names: no colon, no spaces). */
const SUBJECT = '^[^:\\s]+$';
const DURATION = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$|^0$';
/** The `auth` block of a registry or of one of its mirrors. */
const AUTH_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: AUTH_TYPES },
    ...AUTH_FIELD_SCHEMAS,
  },
} as const;
const ENDPOINT_URL = '^https?://[^/?#@]+/?$';
const SIZE = '^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]i?[bB]|[bB])?$';

/** The one schema of the config file: shapes, defaults and `additionalProperties: false` everywhere. */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: { type: 'string', default: '127.0.0.1:5000', pattern: LISTEN },
    storage: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        path: { type: 'string', minLength: 1, default: './data' },
        maxSize: { type: 'string', pattern: SIZE, default: '20GiB' },
        s3: {
          type: 'object',
          additionalProperties: false,
          required: ['bucket'],
          properties: {
            endpoint: { type: 'string', pattern: '^https?://[^\\s/@]+(/.*)?$' },
            region: { type: 'string', minLength: 1, default: 'us-east-1' },
            bucket: { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$' },
            prefix: { type: 'string', default: '', pattern: '^[^\\s]*$' },
            forcePathStyle: { type: 'boolean', default: false },
            redirect: { type: 'boolean', default: false },
            maxAge: { type: 'string', pattern: DURATION },
          },
        },
      },
    },
    cache: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        tagTTL: { type: 'string', pattern: DURATION, default: '5m' },
        staleIfError: { type: 'string', pattern: DURATION, default: '24h' },
      },
    },
    upstream: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        timeout: { type: 'string', pattern: DURATION, default: '30s' },
        deadline: { type: 'string', pattern: DURATION, default: '30s' },
        maxRedirects: { type: 'integer', minimum: 0, maximum: 10, default: 5 },
      },
    },
    defaultRegistry: { type: 'string', pattern: HOST_KEY },
    registries: {
      type: 'object',
      default: {},
      propertyNames: { pattern: HOST_KEY },
      additionalProperties: {
        type: ['object', 'null'],
        additionalProperties: false,
        properties: {
          url: { type: 'string', pattern: ENDPOINT_URL },
          realms: { type: 'array', items: { type: 'string', pattern: '^https?://' } },
          redirects: { type: 'array', items: { type: 'string', pattern: '^https?://(\\*\\.)?[^*/?#@]+(/[^*?#]*)?$' } },
          ca: { type: 'string', minLength: 1 },
          insecure: { type: 'boolean' },
          repositories: {
            type: 'object',
            additionalProperties: false,
            properties: {
              allow: { type: 'array', items: { type: 'string' } },
              deny: { type: 'array', items: { type: 'string' } },
            },
          },
          auth: AUTH_SCHEMA,
          mirrors: {
            type: 'array',
            maxItems: 8,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['url'],
              properties: {
                url: { type: 'string', pattern: ENDPOINT_URL },
                auth: AUTH_SCHEMA,
                tags: { type: 'boolean', default: false },
              },
            },
          },
          rateLimit: {
            type: 'object',
            additionalProperties: false,
            properties: {
              reserve: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
            },
          },
        },
      },
    },
    aliases: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[a-z0-9][a-z0-9._-]*$' },
      additionalProperties: { type: 'string', pattern: HOST_KEY },
    },
    clients: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        anonymous: { type: 'boolean' },
        htpasswd: { type: 'string', minLength: 1 },
        groups: {
          type: 'object',
          default: {},
          propertyNames: { pattern: SUBJECT },
          additionalProperties: { type: 'array', items: { type: 'string', pattern: SUBJECT } },
        },
        access: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['subjects'],
            properties: {
              subjects: { type: 'array', minItems: 1, items: { type: 'string', pattern: SUBJECT } },
              allow: { type: 'array', items: { type: 'string' } },
              deny: { type: 'array', items: { type: 'string' } },
            },
          },
        },
        loginThrottle: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            failures: { type: 'integer', minimum: 1, maximum: 1000, default: 5 },
            lockout: { type: 'string', pattern: DURATION, default: '1s' },
            maxLockout: { type: 'string', pattern: DURATION, default: '15m' },
          },
        },
        limits: {
          type: 'object',
          additionalProperties: false,
          properties: {
            rate: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
            burst: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            concurrency: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            clients: { type: 'integer', minimum: 1, maximum: 10_000_000, default: 100_000 },
          },
        },
        connections: {
          type: 'object',
          default: {},
          additionalProperties: false,
          properties: {
            max: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1024 },
            perAddress: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 128 },
            headersTimeout: { type: 'string', pattern: DURATION, default: '20s' },
            keepAlive: { type: 'string', pattern: DURATION, default: '75s' },
            idle: { type: 'string', pattern: DURATION, default: '60s' },
          },
        },
      },
    },
    metrics: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        auth: { type: 'boolean' },
        listen: { type: 'string', pattern: LISTEN },
      },
    },
    status: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        allow: { type: 'array', items: { type: 'string', pattern: SUBJECT } },
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key'],
      properties: {
        cert: { type: 'string', minLength: 1 },
        key: { type: 'string', minLength: 1 },
        clientCA: { type: 'string', minLength: 1 },
      },
    },
    cluster: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'peers', 'secret'],
      properties: {
        listen: { type: 'string', pattern: LISTEN },
        peers: { type: 'array', minItems: 1, items: { type: 'string', pattern: PEER } },
        secret: { type: 'string' },
        self: { type: 'string', pattern: PEER },
      },
    },
    log: {
      type: 'object',
      default: {},
      additionalProperties: false,
      properties: {
        level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info' },
        access: { enum: ['all', 'sampled', 'misses'], default: 'all' },
      },
    },
  },
} as const;

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile<RawConfig>(CONFIG_SCHEMA);

/** Turns a JSON pointer (`/registries/ghcr.io/auth/type`) into the dotted path users write. */
function dotted(pointer: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.length === 0 ? '(top level)' : parts.join('.');
}

/** What a well-formed value looks like, by the last key of its path. */
const FORMAT_HINTS: Record<string, string> = {
  url: ' (expected http(s)://host[:port], without user info or path)',
  listen: ' (expected HOST:PORT)',
  self: ' (expected HOST:PORT)',
  maxSize: ' (expected a size such as 512MiB or 20GiB)',
  tagTTL: ' (expected a duration such as 30s, 5m, 24h)',
  staleIfError: ' (expected a duration such as 30s, 5m, 24h)',
  timeout: ' (expected a duration such as 30s, 5m, 24h)',
  lockout: ' (expected a duration such as 30s, 5m, 24h)',
  maxLockout: ' (expected a duration such as 30s, 5m, 24h)',
  headersTimeout: ' (expected a duration such as 30s, 5m, 24h)',
  keepAlive: ' (expected a duration such as 30s, 5m, 24h)',
  idle: ' (expected a duration such as 30s, 5m, 24h)',
  defaultRegistry: ' (expected host or host:port, lower case)',
};

function explain(error: ErrorObject): string {
  const where = dotted(error.instancePath);
  const params: Record<string, unknown> = error.params;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${where}: unknown key "${String(params.additionalProperty)}"`;
    case 'enum':
      return `${where}: must be one of ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'propertyNames':
      return `${where}: key "${String(params.propertyName)}" is not allowed (registry keys are host or host:port, lower case)`;
    case 'pattern':
      // The value is not echoed: it may be a secret (a URL with user info, a mistyped token).
      return `${where}: has the wrong format${FORMAT_HINTS[error.instancePath.split('/').pop() ?? ''] ?? ''}`;
    default:
      return `${where}: ${error.message ?? 'is invalid'}`;
  }
}

/** Validates and defaults a parsed document in place; returns it typed, or the list of problems. */
export function checkSchema(document: unknown): { ok: true; config: RawConfig } | { ok: false; problems: string[] } {
  const copy: unknown = structuredClone(document ?? {});
  if (validate(copy)) return { ok: true, config: copy };
  const problems = (validate.errors ?? [])
    .filter((error) => error.keyword !== 'propertyNames' || error.params.propertyName !== undefined)
    .map(explain);
  return { ok: false, problems: [...new Set(problems)] };
}
