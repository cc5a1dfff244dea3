// pullgate with `serve --workers 2` as a bench peer (issue 14 §2): two processes on one port over one storage.
import { startPullgate } from '../../support/pullgate.js';
import { pullgateConfig } from './pullgate.js';
import { registryPath } from './registry-paths.js';
import { discard } from './stop.js';
import type { Peer } from './types.js';

/** Workers of this peer; the primary forks them, so the bench's one pid is not where the work is. */
const WORKERS = 2;

export const pullgateWorkersPeer: Peer = {
  name: 'pullgate-2w',
  label: `pullgate ×${WORKERS} workers`,
  kind: 'mirror',
  relativeTo: 'nginx',
  multiProcess: true,
  serves: registryPath,
  async start(ctx, instance, up) {
    const pg = await startPullgate(ctx.ws, instance, pullgateConfig(up), { serveArgs: ['--workers', String(WORKERS)] });
    return { host: pg.host, url: pg.url, daemon: pg.daemon, stop: () => discard(ctx.ws, instance, pg.daemon) };
  },
};
