import { afterAll, beforeAll, beforeEach } from 'vitest';
import { requireTools } from '../../../support/tools.js';
import { Workspace } from '../../../support/workspace.js';

/** A suite's workspace and whatever its setup started. */
export interface Suite<T> {
  readonly ws: Workspace;
  readonly value: T;
}

/**
 * Registers the hooks of a real-peer suite: check the tools (fail loudly if missing), create a workspace,
 * run `setup`, keep the logs if anything fails, and always kill every peer in teardown.
 */
export function useSuite<T>(label: string, setup: (ws: Workspace) => Promise<T>): () => Suite<T> {
  let ws: Workspace | undefined;
  let value: { v: T } | undefined;
  beforeAll(async () => {
    requireTools();
    ws = await Workspace.create(label);
    try {
      value = { v: await setup(ws) };
    } catch (err) {
      ws.markFailed();
      throw err;
    }
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => ws?.markFailed());
  });
  afterAll(async () => {
    await ws?.close();
  });
  return () => {
    if (ws === undefined || value === undefined) throw new Error(`suite ${label}: setup did not complete`);
    return { ws, value: value.v };
  };
}
