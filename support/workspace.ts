import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Teardown = () => Promise<void> | void;

/** A temp directory for one suite plus a LIFO list of teardown steps that always all run. */
export class Workspace {
  private readonly teardowns: Teardown[] = [];
  private failed = false;

  private constructor(readonly dir: string) {}

  static async create(label: string): Promise<Workspace> {
    const safe = label.replace(/[^a-zA-Z0-9-]/g, '-');
    return new Workspace(await mkdtemp(join(tmpdir(), `pullgate-e2e-${safe}-`)));
  }

  /** A path inside the workspace. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Creates (recursively) and returns a directory inside the workspace. */
  async mkdir(...parts: string[]): Promise<string> {
    const p = this.path(...parts);
    await mkdir(p, { recursive: true });
    return p;
  }

  /** Registers a teardown step; steps run in reverse order of registration. */
  defer(step: Teardown): void {
    this.teardowns.push(step);
  }

  /** Marks the suite as failed so that its logs and data are kept for inspection. */
  markFailed(): void {
    this.failed = true;
  }

  /** Runs every teardown step (even if some throw), then removes the directory unless a test failed. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.teardowns.reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    this.teardowns.length = 0;
    if (this.failed || process.env.PULLGATE_E2E_KEEP === '1') {
      process.stderr.write(`e2e: logs and data kept in ${this.dir}\n`);
    } else {
      await rm(this.dir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw new AggregateError(errors, 'e2e teardown failed');
  }
}
