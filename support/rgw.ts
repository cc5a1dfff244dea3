import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../scripts/rgw.sh', import.meta.url));

/** A running Ceph RADOS Gateway (scripts/rgw.sh) with one user and one empty bucket. */
export interface Rgw {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Milliseconds from the first daemon to a bucket that takes writes. */
  startupMs: number;
  /** The environment a client needs (the AWS SDK's default chain reads the keys from it). */
  env: Record<string, string>;
  /** Kills radosgw alone (`kill -9`): S3 stops answering while the cluster keeps its data. */
  stopGateway(): Promise<void>;
  /** Starts radosgw again on the same port; resolves once it answers. */
  startGateway(): Promise<void>;
  /** Kills the daemons; idempotent. */
  stop(): Promise<void>;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, ...args], { env, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/rgw.sh ${args.join(' ')} failed (${err.message.split('\n')[0] ?? ''}):\n${stderr.slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

/**
 * Starts a single-node Ceph cluster with radosgw in `dir` (which must not hold one yet); rejects with the
 * daemons' log tails when it cannot, so a suite that needs S3 fails loudly instead of skipping.
 */
export async function startRgw(dir: string, options: { bucket?: string } = {}): Promise<Rgw> {
  const out = await run(['start', dir], { ...process.env, RGW_BUCKET: options.bucket ?? 'pullgate' });
  const values = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const need = (key: string): string => {
    const value = values.get(key);
    if (value === undefined) throw new Error(`scripts/rgw.sh start printed no ${key}:\n${out}`);
    return value;
  };
  let stopped = false;
  const rgw: Rgw = {
    endpoint: need('RGW_ENDPOINT'),
    region: need('RGW_REGION'),
    bucket: need('RGW_BUCKET'),
    accessKeyId: need('AWS_ACCESS_KEY_ID'),
    secretAccessKey: need('AWS_SECRET_ACCESS_KEY'),
    startupMs: Number(need('RGW_STARTUP_MS')),
    env: {},
    stopGateway: async () => {
      await run(['stop-gateway', dir], process.env);
    },
    startGateway: async () => {
      await run(['start-gateway', dir], process.env);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await run(['stop', dir], process.env);
    },
  };
  rgw.env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_REGION: rgw.region };
  return rgw;
}
