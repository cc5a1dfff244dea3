// The bench's shared state for one run: the workspace, the upstream registry and its token server, the images
// pushed to it, the peers started once and reused, the log, and the failure record.
import { rm } from 'node:fs/promises';
import { logsOf } from '../../support/diagnostics.js';
import { type BuiltImage, type Descriptor, buildOciImage } from '../../support/oci-layout.js';
import type { Daemon } from '../../support/proc.js';
import { type Registry, startRegistry } from '../../support/registry.js';
import { createSigningKey } from '../../support/signing-key.js';
import { skopeoPush } from '../../support/skopeo.js';
import { type TokenServer, startTokenServer } from '../../support/token-server.js';
import type { Workspace } from '../../support/workspace.js';
import type { Peer, RunningPeer, UpstreamEndpoint } from '../peers/types.js';
import type { BenchConfig } from './config.js';
import { MiB, PULLER, REPO, SEEDER, TAG } from './constants.js';
import { AccessLogMark, classify } from './probes.js';

export interface Images {
  /** One 20 MiB layer (warm blob, fan-out, manifests). */
  small: BuiltImage;
  /** One 200 MiB layer (RSS). */
  big: BuiltImage;
  /** Six layers (cold pulls). */
  multi: BuiltImage;
}

/** The upstream registry, its token server and the images pushed to it. */
interface Setup {
  upstream: Registry;
  tokens: TokenServer;
  images: Images;
}

export type UpstreamCounts = ReturnType<typeof classify> & { total: number; tokens: number };

/** Where the upstream's access log and its token server's request list stood. */
export interface UpstreamMark {
  log: AccessLogMark;
  tokens: number;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function biggestLayer(img: BuiltImage): Descriptor {
  const [first, ...rest] = img.layers;
  if (first === undefined) throw new Error('image without layers');
  return rest.reduce((a, b) => (b.size > a.size ? b : a), first);
}

/** The upstream, its images and the bench's bookkeeping, handed to every peer and measure. */
export class BenchContext {
  readonly errors: string[] = [];
  private readonly pool = new Map<string, Promise<RunningPeer>>();

  private constructor(
    readonly ws: Workspace,
    readonly config: BenchConfig,
    private readonly setup: Setup | undefined,
    /** Progress lines (stderr, with the run's clock). */
    readonly log: (msg: string) => void,
  ) {}

  /**
   * A context for this run: with `upstream`, starts the token-auth upstream and pushes the bench's three images
   * to it; without (measures that need no upstream, such as growth), upstream and images throw when used.
   */
  static async create(ws: Workspace, config: BenchConfig, upstream: boolean, log: (msg: string) => void): Promise<BenchContext> {
    const bare = new BenchContext(ws, config, undefined, log);
    return upstream ? new BenchContext(ws, config, await bare.startUpstream(), log) : bare;
  }

  get upstream(): Registry {
    return this.need().upstream;
  }

  get tokens(): TokenServer {
    return this.need().tokens;
  }

  get images(): Images {
    return this.need().images;
  }

  private need(): Setup {
    if (this.setup === undefined) throw new Error('this measure needs the upstream registry, which this run did not start');
    return this.setup;
  }

  private async startUpstream(): Promise<Setup> {
    const { ws, config } = this;
    const { log } = this;
    log('starting the upstream registry (token auth) and its token server');
    const tokens = await startTokenServer(await createSigningKey(await ws.mkdir('token')), {
      [PULLER.username]: { password: PULLER.password, actions: ['pull'] },
      [SEEDER.username]: { password: SEEDER.password, actions: ['pull', 'push'] },
    });
    ws.defer(() => tokens.close());
    const upstream = await startRegistry(ws, 'upstream', { type: 'token', tokenServer: tokens });
    const { blobBytes, bigBlobBytes, multiLayerBytes } = config.sizes;
    const [first = MiB, ...extra] = multiLayerBytes;
    log(`building and pushing images: ${blobBytes / MiB} MiB layer, ${bigBlobBytes / MiB} MiB layer, ${multiLayerBytes.length} × ${first / MiB} MiB layers`);
    const seed = `${SEEDER.username}:${SEEDER.password}`;
    const build = async (name: keyof Images, bigFileBytes: number, extraLayerBytes: readonly number[] = []): Promise<BuiltImage> => {
      const img = await buildOciImage(ws.path(`layout-${name}`), { tag: TAG, seed: `bench-${name}`, bigFileBytes, extraLayerBytes });
      await skopeoPush(img.dir, TAG, `${upstream.host}/${REPO[name]}:${TAG}`, seed);
      // The layout is only needed for the push; the blobs stay in memory for the comparisons.
      await rm(img.dir, { recursive: true, force: true });
      return img;
    };
    const images = { small: await build('small', blobBytes), big: await build('big', bigBlobBytes), multi: await build('multi', first, extra) };
    return { upstream, tokens, images };
  }

  /** The upstream as the peers reach it on loopback. */
  get direct(): UpstreamEndpoint {
    return { host: this.upstream.host, url: this.upstream.url };
  }

  /**
   * A peer started once in front of the loopback upstream and shared by the measures that need a warm
   * instance (stopped with the workspace).
   */
  shared(peer: Peer): Promise<RunningPeer> {
    let running = this.pool.get(peer.name);
    if (running === undefined) {
      running = peer.start(this, peer.name, this.direct);
      this.pool.set(peer.name, running);
      running.catch(() => this.pool.delete(peer.name));
    }
    return running;
  }

  /** Runs `step`, recording its failure (with the peers' log tails on the console) instead of ending the bench. */
  async phase(name: string, daemons: () => readonly (Daemon | undefined)[], step: () => Promise<void>): Promise<boolean> {
    this.log(`== ${name}`);
    try {
      await step();
      return true;
    } catch (err) {
      const msg = `${name}: ${errorText(err)}`;
      this.errors.push(msg);
      this.log(`FAILED ${msg}`);
      const ds = [...daemons(), this.upstream.daemon].filter((d): d is Daemon => d !== undefined);
      process.stderr.write(`${logsOf(...ds)}\n`);
      return false;
    }
  }

  async markUpstream(): Promise<UpstreamMark> {
    return { log: await AccessLogMark.at(this.upstream.daemon.logPath), tokens: this.tokens.requests.length };
  }

  async upstreamCounts(mark: UpstreamMark): Promise<UpstreamCounts> {
    const entries = await mark.log.since();
    return { ...classify(entries), total: entries.length, tokens: this.tokens.requests.length - mark.tokens };
  }
}
