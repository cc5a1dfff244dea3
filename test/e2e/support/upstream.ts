import { type BuiltImage, buildOciImage } from '../../../support/oci-layout.js';
import { type Registry, startRegistry } from '../../../support/registry.js';
import { createSigningKey } from '../../../support/signing-key.js';
import { skopeoPush } from '../../../support/skopeo.js';
import { type TokenServer, startTokenServer } from '../../../support/token-server.js';
import type { Workspace } from '../../../support/workspace.js';

export type AuthFlavour = 'htpasswd' | 'token';

/** A seeded upstream: a registry (htpasswd or token auth), its token server, and the image pushed to it. */
export interface Upstream {
  flavour: AuthFlavour;
  registry: Registry;
  /** Present for the token flavour. */
  tokenServer?: TokenServer;
  /** Repository and tag of the seeded image. */
  repository: string;
  tag: string;
  image: BuiltImage;
  /** Pull-only credentials: the ones pullgate is given. */
  puller: { username: string; password: string };
  /** Credentials allowed to push (used only to seed). */
  seeder: { username: string; password: string };
}

export const E2E_REPOSITORY = 'e2e/app';
export const E2E_TAG = '1';

/** Starts the upstream registry in the requested auth flavour and pushes a freshly built image with skopeo. */
export async function startUpstream(ws: Workspace, flavour: AuthFlavour): Promise<Upstream> {
  const puller = { username: 'alice', password: `pull-secret-${flavour}-7f3a` };
  const seeder = { username: 'seeder', password: `push-secret-${flavour}-91c2` };
  let tokenServer: TokenServer | undefined;
  let registry: Registry;
  if (flavour === 'token') {
    const signer = await createSigningKey(await ws.mkdir('token'));
    const ts = await startTokenServer(signer, {
      [puller.username]: { password: puller.password, actions: ['pull'] },
      [seeder.username]: { password: seeder.password, actions: ['pull', 'push'] },
    });
    ws.defer(() => ts.close());
    tokenServer = ts;
    registry = await startRegistry(ws, 'registry', { type: 'token', tokenServer: ts });
  } else {
    registry = await startRegistry(ws, 'registry', {
      type: 'htpasswd',
      users: { [puller.username]: puller.password, [seeder.username]: seeder.password },
    });
  }

  const image = await buildOciImage(ws.path('seed-layout'), { tag: E2E_TAG, seed: `pullgate-e2e-${flavour}`, bigFileBytes: 3 * 1024 * 1024 + 123 });
  await skopeoPush(image.dir, E2E_TAG, `${registry.host}/${E2E_REPOSITORY}:${E2E_TAG}`, `${seeder.username}:${seeder.password}`);
  return {
    flavour,
    registry,
    ...(tokenServer === undefined ? {} : { tokenServer }),
    repository: E2E_REPOSITORY,
    tag: E2E_TAG,
    image,
    puller,
    seeder,
  };
}
