import { type KeyObject, X509Certificate, createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './proc.js';

/** A self-signed P-256 certificate and its key: the token server signs with it, the registry trusts it. */
export interface SigningKey {
  certPath: string;
  key: KeyObject;
  /** The certificate in DER, base64 (standard alphabet), as the JWS `x5c` header carries it. */
  x5c: string;
}

/** Creates the key and self-signed certificate with the openssl CLI in `dir`. */
export async function createSigningKey(dir: string): Promise<SigningKey> {
  const keyPath = join(dir, 'token-signing.key');
  const certPath = join(dir, 'token-signing.crt');
  await runOk('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=pullgate-e2e-token-issuer',
  ]);
  const cert = new X509Certificate(await readFile(certPath));
  const key = createPrivateKey(await readFile(keyPath));
  return { certPath, key, x5c: cert.raw.toString('base64') };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Signs `claims` as an ES256 JWT whose header carries the certificate chain (`x5c`). */
export function signJwt(signer: SigningKey, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [signer.x5c] };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${base64url(signature)}`;
}
