import { isRecord } from '../../util/is-record.js';
import type { Secret } from '../credential.js';

/** The parts of a docker `config.json`, containers `auth.json` or Kubernetes dockercfg that carry logins. */
export interface AuthFile {
  /** `auths` entries by their key as written; `undefined` = a placeholder (`{}`) or unusable entry. */
  auths: Map<string, Secret | undefined>;
  /** `credHelpers`: registry key as written → helper name (`cgr` for `docker-credential-cgr`). */
  credHelpers: Map<string, string>;
  /** `credsStore`: the helper that holds every login not in `credHelpers`. */
  credsStore: string | undefined;
}

export const EMPTY_AUTH_FILE: AuthFile = { auths: new Map(), credHelpers: new Map(), credsStore: undefined };

function text(record: Record<string, unknown>, field: string): string {
  const value = record[field];
  return typeof value === 'string' ? value : '';
}

/**
 * Decodes an `auth` field: base64 of `user:password` (padding optional), split at the first `:`,
 * trailing NUL bytes trimmed (some writers leave them). Undefined when it is not of that shape.
 */
export function decodeAuthField(auth: string): { username: string; password: string } | undefined {
  const cleaned = auth.trim();
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(cleaned)) return undefined;
  const decoded = Buffer.from(cleaned, 'base64').toString('utf8').replace(/\0+$/, '');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Reads one `auths` entry: `registrytoken` → bearer, `identitytoken` → refresh grant, else `auth`
 * or `username`/`password` → basic. An entry with none of these (`{}`, only `email`) is not credentials.
 */
export function decodeEntry(entry: unknown): Secret | undefined {
  if (!isRecord(entry)) return undefined;
  const registryToken = text(entry, 'registrytoken');
  if (registryToken !== '') return { kind: 'bearer', token: registryToken };
  const fromAuth = text(entry, 'auth') === '' ? undefined : decodeAuthField(text(entry, 'auth'));
  const username = fromAuth?.username ?? text(entry, 'username');
  const password = fromAuth?.password ?? text(entry, 'password');
  const identityToken = text(entry, 'identitytoken');
  if (identityToken !== '') return { kind: 'refresh', username: username === '' ? undefined : username, refreshToken: identityToken };
  if (username === '' && password === '') return undefined;
  return { kind: 'basic', username, password };
}

function stringMap(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!isRecord(value)) return out;
  for (const [key, name] of Object.entries(value)) if (typeof name === 'string' && name !== '') out.set(key, name);
  return out;
}

/**
 * Parses the text of a credentials file. Accepts docker `config.json` / containers `auth.json` /
 * `.dockerconfigjson` (`{"auths": …, "credHelpers": …, "credsStore": …}`) and the legacy
 * `.dockercfg` bare map (`{"https://index.docker.io/v1/": {"auth": …}}`). Errors name the file,
 * never its content.
 */
export function parseAuthFile(content: string, where: string): AuthFile {
  let document: unknown;
  try {
    document = JSON.parse(content.trim() === '' ? '{}' : content);
  } catch {
    throw new Error(`${where} is not valid JSON`);
  }
  if (!isRecord(document)) throw new Error(`${where} is not a JSON object`);
  const modern = 'auths' in document || 'credHelpers' in document || 'credsStore' in document;
  const rawAuths = modern ? document.auths : document;
  const auths = new Map<string, Secret | undefined>();
  if (isRecord(rawAuths)) {
    for (const [key, entry] of Object.entries(rawAuths)) {
      if (isRecord(entry)) auths.set(key, decodeEntry(entry));
    }
  }
  const credsStore = modern ? text(document, 'credsStore') : '';
  return { auths, credHelpers: modern ? stringMap(document.credHelpers) : new Map<string, string>(), credsStore: credsStore === '' ? undefined : credsStore };
}
