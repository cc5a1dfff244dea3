// The Node ceiling (node-floor-server.mjs) as a bench peer: what node:http alone achieves on this machine,
// run with pullgate's own node flags, so a ratio to nginx can be split into Node's share and pullgate's.
import { join } from 'node:path';
import { freePort } from '../../support/ports.js';
import { startDaemon } from '../../support/proc.js';
import { REPO_ROOT, startFlags } from '../../support/pullgate.js';
import type { Workspace } from '../../support/workspace.js';
import { type FileServer, fileServerReady, writeFiles } from './file-server.js';

export type NodeFloor = FileServer;

/** Starts the ceiling server on `files`; `workers` > 1 forks that many processes on one port (node:cluster). */
export async function startNodeFloor(ws: Workspace, name: string, files: ReadonlyMap<string, Buffer>, workers = 1): Promise<NodeFloor> {
  const root = await ws.mkdir(name, 'root');
  await writeFiles(root, files);
  const port = await freePort();
  const daemon = startDaemon({
    name: `node ceiling (${name})`,
    command: process.execPath,
    args: [...startFlags(), join(REPO_ROOT, 'bench', 'lib', 'node-floor-server.mjs'), root, String(port), String(workers)],
    logPath: ws.path(`${name}.log`),
    cwd: ws.path(name),
  });
  ws.defer(() => daemon.stop());
  return fileServerReady(daemon, port, files);
}
