import { type Pullgate, startPullgate } from '../../../support/pullgate.js';
import { type Registry, startRegistry } from '../../../support/registry.js';
import { type RunnableImage, buildRunnableImage, readStaticBusybox } from './runnable-image.js';
import { createSigningKey } from '../../../support/signing-key.js';
import { skopeoPush } from '../../../support/skopeo.js';
import { type TokenServer, startTokenServer } from '../../../support/token-server.js';
import type { Workspace } from '../../../support/workspace.js';

/** One seeded upstream: a registry that needs credentials and the runnable image pushed to it. */
export interface SeededRegistry {
  /** The registry key pullgate is configured with (what clients name), e.g. `docker.io`. */
  key: string;
  registry: Registry;
  /** Repository on the upstream registry (no registry key), e.g. `library/pgbox`. */
  repository: string;
  tag: string;
  image: RunnableImage;
}

/** A pullgate that stands in for Docker Hub and ghcr.io, both backed by local distribution registries. */
export interface ClientUpstreams {
  /** `docker.io`: an htpasswd registry holding `library/pgbox:1`. */
  hub: SeededRegistry;
  /** `ghcr.io`: a token-auth registry holding `pullgate-e2e/app:2`. */
  ghcr: SeededRegistry;
  tokenServer: TokenServer;
  pg: Pullgate;
}

const HUB_REPOSITORY = 'library/pgbox';
const GHCR_REPOSITORY = 'pullgate-e2e/app';

/**
 * Starts two credentialed registries (htpasswd and token auth), pushes a runnable image to each with skopeo, and
 * starts pullgate with them as the registry keys `docker.io` (the default) and `ghcr.io`. Nothing here can reach
 * the real Docker Hub or ghcr.io: both keys' urls point at 127.0.0.1.
 */
export async function startClientUpstreams(ws: Workspace): Promise<ClientUpstreams> {
  const busybox = await readStaticBusybox();
  const puller = { username: 'alice', password: 'pull-secret-clients-5d1e' };
  const seeder = { username: 'seeder', password: 'push-secret-clients-b7a0' };
  const seederCreds = `${seeder.username}:${seeder.password}`;

  const hubRegistry = await startRegistry(ws, 'hub-registry', {
    type: 'htpasswd',
    users: { [puller.username]: puller.password, [seeder.username]: seeder.password },
  });
  const signer = await createSigningKey(await ws.mkdir('token'));
  const tokenServer = await startTokenServer(signer, {
    [puller.username]: { password: puller.password, actions: ['pull'] },
    [seeder.username]: { password: seeder.password, actions: ['pull', 'push'] },
  });
  ws.defer(() => tokenServer.close());
  const ghcrRegistry = await startRegistry(ws, 'ghcr-registry', { type: 'token', tokenServer });

  const seed = async (key: string, registry: Registry, repository: string, tag: string): Promise<SeededRegistry> => {
    const image = await buildRunnableImage(ws.path(`layout-${key}`), tag, `${key}/${repository}`, busybox);
    await skopeoPush(image.dir, tag, `${registry.host}/${repository}:${tag}`, seederCreds);
    return { key, registry, repository, tag, image };
  };
  const hub = await seed('docker.io', hubRegistry, HUB_REPOSITORY, '1');
  const ghcr = await seed('ghcr.io', ghcrRegistry, GHCR_REPOSITORY, '2');

  const pg = await startPullgate(ws, 'pullgate', {
    defaultRegistry: 'docker.io',
    registries: [hub, ghcr].map((s) => ({ key: s.key, url: s.registry.url, username: puller.username, password: puller.password })),
  });
  return { hub, ghcr, tokenServer, pg };
}
