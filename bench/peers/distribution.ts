// distribution's registry in proxy mode as a bench peer: own storage, proxy.remoteurl/username/password.
import { run } from '../../support/proc.js';
import { startRegistry } from '../../support/registry.js';
import { PULLER } from '../lib/constants.js';
import { registryPath } from './registry-paths.js';
import { discard } from './stop.js';
import type { Peer } from './types.js';

export const distributionPeer: Peer = {
  name: 'distribution',
  label: 'distribution proxy',
  kind: 'mirror',
  serves: registryPath,
  async start(ctx, instance, up) {
    const reg = await startRegistry(ctx.ws, instance, { type: 'none' }, { proxy: { remoteurl: up.url, ...PULLER } });
    return { host: reg.host, url: reg.url, daemon: reg.daemon, stop: () => discard(ctx.ws, instance, reg.daemon) };
  },
  async version() {
    const r = await run('docker-registry', ['--version'], { timeoutMs: 10_000 });
    return r.stdout.toString('utf8').trim();
  },
};
