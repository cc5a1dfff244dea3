// nginx as the bench's static-file reference (worker_processes auto, sendfile on, no access log); its CPU is the
// master's and its workers'.
import { run } from '../../support/proc.js';
import { nginxBinary, startNginx } from '../lib/nginx.js';
import { benchFiles, staticPath } from './static-files.js';
import { discard } from './stop.js';
import type { Peer } from './types.js';

export const nginxPeer: Peer = {
  name: 'nginx',
  label: 'nginx',
  kind: 'files',
  serves: staticPath,
  async start(ctx, instance) {
    const nginx = await startNginx(ctx.ws, instance, benchFiles(ctx));
    return { host: nginx.url.slice('http://'.length), url: nginx.url, daemon: nginx.daemon, stop: () => discard(ctx.ws, instance, nginx.daemon) };
  },
  async version() {
    const r = await run(nginxBinary(), ['-v'], { timeoutMs: 10_000 });
    return `${r.stdout.toString('utf8')}${r.stderr}`.trim();
  },
};
