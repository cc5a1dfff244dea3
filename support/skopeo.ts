import { type RunResult, run, runOk } from './proc.js';

/** Flags every skopeo call gets: no trust policy, no host auth files, plain HTTP to loopback. */
function baseArgs(): string[] {
  return ['--insecure-policy'];
}

/** Pushes an OCI layout tag to a registry, preserving digests. */
export async function skopeoPush(layoutDir: string, tag: string, dest: string, creds: string): Promise<void> {
  await runOk('skopeo', [
    ...baseArgs(), 'copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds,
    `oci:${layoutDir}:${tag}`, `docker://${dest}`,
  ]);
}

/** Copies an image from a registry (anonymously unless creds given) into an OCI layout. */
export async function skopeoPull(src: string, layoutDir: string, tag: string, creds?: string): Promise<RunResult> {
  return run('skopeo', [
    ...baseArgs(), 'copy', '--preserve-digests', '--src-tls-verify=false',
    ...(creds === undefined ? ['--src-no-creds'] : ['--src-creds', creds]),
    `docker://${src}`, `oci:${layoutDir}:${tag}`,
  ]);
}

/** `skopeo inspect --raw` (the manifest bytes), anonymously unless creds given. */
export async function skopeoInspectRaw(src: string, creds?: string): Promise<RunResult> {
  return run('skopeo', [
    ...baseArgs(), 'inspect', '--raw', '--tls-verify=false',
    ...(creds === undefined ? ['--no-creds'] : ['--creds', creds]),
    `docker://${src}`,
  ]);
}
