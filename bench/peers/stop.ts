// Stopping a peer started for one measurement: the process, then its storage (its log stays until the end).
import { rm } from 'node:fs/promises';
import type { Daemon } from '../../support/proc.js';
import type { Workspace } from '../../support/workspace.js';

/** Stops `daemon` and deletes the workspace directory `name` it used. */
export async function discard(ws: Workspace, name: string, daemon: Daemon): Promise<void> {
  await daemon.stop();
  await rm(ws.path(name), { recursive: true, force: true });
}
