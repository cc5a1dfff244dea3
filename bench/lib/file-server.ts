// What the static-file peers (nginx, node:http alone) share: the files they serve, and waiting for them to answer.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from '../../support/proc.js';
import { waitForHttp } from '../../support/wait.js';

export interface FileServer {
  url: string;
  daemon: Daemon;
}

/** Writes `files` (name -> bytes) into `root`. */
export async function writeFiles(root: string, files: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [file, data] of files) await writeFile(join(root, file), data);
}

/** Resolves once the server on `port` serves the first of `files` (fails early if the daemon exits). */
export async function fileServerReady(daemon: Daemon, port: number, files: ReadonlyMap<string, Buffer>): Promise<FileServer> {
  const url = `http://127.0.0.1:${port}`;
  const [first] = files.keys();
  await waitForHttp(`${url}/${first ?? ''}`, first === undefined ? 404 : 200, {
    what: `${daemon.name} on ${url}`,
    abortIf: () => { daemon.assertRunning(); },
    describe: () => daemon.logTail(),
  });
  return { url, daemon };
}
