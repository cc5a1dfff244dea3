import path from 'node:path';
import { Document } from 'yaml';
import type { ClientFile } from './client-file.js';

/** Where each client reads its files on a Flatcar / Fedora CoreOS host. */
const CONTAINERD_DIR = '/etc/containerd/certs.d';
const DOCKER_DIR = '/etc/docker';
/** Where the Butane config puts docker's files (and the CA containerd reads from there). */
export const BUTANE_DOCKER_DIR = DOCKER_DIR;

/** rw-r--r--, written in decimal as Ignition stores it (Butane also accepts 0644). */
const MODE_0644 = 0o644;

const HEADER = [
  ' Butane config (Flatcar) from `pullgate hosts butane`: on first boot Ignition writes the containerd',
  ' hosts.toml of every registry pullgate mirrors and the Docker daemon.json that points Docker Hub at it.',
  ' Transpile with `butane --strict < pullgate.bu > pullgate.ign`, or merge storage.files into your own config.',
  ' Fedora CoreOS: set `variant: fcos` and `version: 1.5.0`; the files are the same.',
].join('\n');

/**
 * A Butane config (variant flatcar, version 1.0.0) whose `storage.files` write the given containerd
 * `hosts.toml` files under /etc/containerd/certs.d and docker's daemon.json under /etc/docker.
 */
export function butane(containerdFiles: readonly ClientFile[], dockerFiles: readonly ClientFile[]): ClientFile[] {
  const placed = [
    ...containerdFiles.map((file) => ({ file, dir: CONTAINERD_DIR })),
    ...dockerFiles.map((file) => ({ file, dir: DOCKER_DIR })),
  ];
  const document = new Document({
    variant: 'flatcar',
    version: '1.0.0',
    storage: {
      files: placed.map(({ file, dir }) => ({
        path: path.posix.join(dir, file.path),
        mode: MODE_0644,
        contents: { inline: file.content },
      })),
    },
  });
  document.commentBefore = HEADER;
  return [{ path: 'pullgate.bu', syntax: 'yaml', content: document.toString({ lineWidth: 0 }) }];
}
