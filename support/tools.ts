import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The external programs the real-peer tests drive; each must be on PATH. */
export const REQUIRED_TOOLS = ['docker-registry', 'skopeo', 'containerd', 'ctr', 'openssl', 'podman'] as const;

export type Tool = (typeof REQUIRED_TOOLS)[number];

function onPath(tool: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Throws a loud error naming every missing tool and the installer to run: never skip silently. */
export function requireTools(tools: readonly Tool[] = REQUIRED_TOOLS): void {
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length > 0) {
    throw new Error(
      `e2e: missing tools: ${missing.join(', ')}. ` +
        'Run `bash scripts/install-test-deps.sh` (installs the Debian packages docker-registry, skopeo, containerd, openssl, ' +
        'docker.io, podman, busybox-static).',
    );
  }
}
