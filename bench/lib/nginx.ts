// nginx as the static-file reference: a non-daemon child with every path (pid, logs, temp) in the workspace.
import { accessSync, constants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../support/ports.js';
import { startDaemon } from '../../support/proc.js';
import type { Workspace } from '../../support/workspace.js';
import { type FileServer, fileServerReady, writeFiles } from './file-server.js';

export type Nginx = FileServer;

/** The nginx binary: on PATH, else Debian's /usr/sbin (not on a non-root PATH). */
export function nginxBinary(): string {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return 'nginx';
}

/**
 * Serves `files` (name -> bytes) from a temp root with a minimal nginx.conf: `worker_processes auto` and
 * sendfile, as Debian's default config has them; no access log.
 */
export async function startNginx(ws: Workspace, name: string, files: ReadonlyMap<string, Buffer>): Promise<Nginx> {
  const dir = await ws.mkdir(name);
  const root = await ws.mkdir(name, 'root');
  const temp = await ws.mkdir(name, 'temp');
  await writeFiles(root, files);
  const port = await freePort();
  const q = (s: string): string => JSON.stringify(s);
  const conf = [
    // As root, nginx's workers would switch to `nobody`, who cannot read a 0700 temp dir.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes auto;',
    `pid ${q(join(dir, 'nginx.pid'))};`,
    `error_log ${q(join(dir, 'error.log'))} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    '  tcp_nopush on;',
    '  keepalive_requests 1000000;',
    '  default_type application/octet-stream;',
    `  client_body_temp_path ${q(join(temp, 'body'))};`,
    `  proxy_temp_path ${q(join(temp, 'proxy'))};`,
    `  fastcgi_temp_path ${q(join(temp, 'fastcgi'))};`,
    `  uwsgi_temp_path ${q(join(temp, 'uwsgi'))};`,
    `  scgi_temp_path ${q(join(temp, 'scgi'))};`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    root ${q(root)};`,
    '    location / { }',
    '  }',
    '}',
    '',
  ].join('\n');
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const daemon = startDaemon({
    name: `nginx (${name})`,
    command: nginxBinary(),
    args: ['-p', dir, '-e', join(dir, 'error.log'), '-c', confPath, '-g', 'daemon off;'],
    logPath: ws.path(`${name}.log`),
    cwd: dir,
  });
  ws.defer(() => daemon.stop());
  return fileServerReady(daemon, port, files);
}
