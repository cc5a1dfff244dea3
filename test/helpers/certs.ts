import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** PEM files of one generated key pair and certificate. */
export interface CertFiles {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint as `openssl x509 -fingerprint` prints it (AA:BB:…). */
  fingerprint: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Generates a CA (self-signed, P-256) in `dir`. */
export function makeCa(dir: string, name = 'ca'): CertFiles {
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=pullgate test ${name}`]);
  return { cert, key, fingerprint: fingerprint(cert) };
}

/** Generates a key and a certificate for `cn` signed by `ca`, valid for 127.0.0.1, localhost and `dnsNames`. */
export function makeLeaf(
  dir: string,
  name: string,
  ca: CertFiles,
  cn = 'localhost',
  usage: 'server' | 'client' = 'server',
  dnsNames: readonly string[] = [],
): CertFiles {
  mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  const san = ['IP:127.0.0.1', 'DNS:localhost', ...dnsNames.map((n) => `DNS:${n}`)].join(',');
  writeFileSync(ext, usage === 'server' ? `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n` : 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key, fingerprint: fingerprint(cert) };
}

function fingerprint(cert: string): string {
  const out = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
  return out.trim().split('=')[1] ?? '';
}

/**
 * A directory laid out as kubelet mounts a Secret: `tls.crt` and `tls.key` are symlinks through
 * `..data`, itself a symlink to a timestamped directory; `publish` swaps `..data` atomically.
 */
export class SecretMount {
  private generation = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get cert(): string {
    return path.join(this.dir, 'tls.crt');
  }

  get key(): string {
    return path.join(this.dir, 'tls.key');
  }

  /** Writes a new generation and swaps `..data` to it, as kubelet does on a Secret update. */
  publish(files: { cert: string; key: string }): void {
    const generation = `..gen_${++this.generation}`;
    const target = path.join(this.dir, generation);
    mkdirSync(target);
    writeFileSync(path.join(target, 'tls.crt'), readFileSync(files.cert));
    writeFileSync(path.join(target, 'tls.key'), readFileSync(files.key));
    const tmpLink = path.join(this.dir, '..data_tmp');
    symlinkSync(generation, tmpLink);
    renameSync(tmpLink, path.join(this.dir, '..data'));
    if (this.generation === 1) {
      symlinkSync(path.join('..data', 'tls.crt'), this.cert);
      symlinkSync(path.join('..data', 'tls.key'), this.key);
    }
  }
}
