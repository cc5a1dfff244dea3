// The Node ceiling (node-floor-server.mjs) as a bench peer: what node:http alone achieves on this machine,
// run with pullgate's own node flags, so a ratio to nginx can be split into Node's share and pullgate's.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../test/e2e/support/ports.js';
import { type Daemon, startDaemon } from '../../test/e2e/support/proc.js';
import { REPO_ROOT } from '../../test/e2e/support/pullgate.js';
import { waitForHttp } from '../../test/e2e/support/wait.js';
import type { Workspace } from '../../test/e2e/support/workspace.js';

export interface NodeFloor {
  url: string;
  daemon: Daemon;
}

export async function startNodeFloor(ws: Workspace, name: string, files: ReadonlyMap<string, Buffer>): Promise<NodeFloor> {
  const root = await ws.mkdir(name, 'root');
  for (const [file, data] of files) await writeFile(join(root, file), data);
  const port = await freePort();
  const daemon = startDaemon({
    name: `node ceiling (${name})`,
    command: process.execPath,
    args: ['--max-semi-space-size=2', join(REPO_ROOT, 'bench', 'lib', 'node-floor-server.mjs'), root, String(port)],
    logPath: ws.path(`${name}.log`),
    cwd: ws.path(name),
  });
  ws.defer(() => daemon.stop());
  const url = `http://127.0.0.1:${port}`;
  const [first] = files.keys();
  await waitForHttp(`${url}/${first ?? ''}`, first === undefined ? 404 : 200, {
    what: `${daemon.name} on ${url}`,
    abortIf: () => { daemon.assertRunning(); },
    describe: () => daemon.logTail(),
  });
  return { url, daemon };
}
