import { gunzipSync } from 'node:zlib';
import { tarFiles } from '../../util/tar.js';

/** Largest archive content unpacked in memory: a docker.tar.gz holds one small JSON file. */
const MAX_UNPACKED = 16 * 1024 * 1024;
/** Files looked for in the archive, in order: docker's config.json, then the legacy .dockercfg. */
const MEMBERS = ['.docker/config.json', '.dockercfg'];

/** True when the content is gzip (a Mesos `docker.tar.gz`) rather than JSON. */
export function isGzip(content: Buffer): boolean {
  return content.length >= 2 && content[0] === 0x1f && content[1] === 0x8b;
}

/**
 * Reads the credentials file out of a Mesos-style `docker.tar.gz` (the archive of `~/.docker`
 * that the Mesos fetcher unpacks into a task's home) in memory, without writing anything to disk.
 * Errors name the archive, never its content.
 */
export function configFromArchive(content: Buffer, where: string): string {
  let tar: Buffer;
  try {
    tar = gunzipSync(content, { maxOutputLength: MAX_UNPACKED });
  } catch (err) {
    throw new Error(`${where} is not a readable gzip archive (${(err as NodeJS.ErrnoException).code ?? 'corrupt'})`);
  }
  let files;
  try {
    files = tarFiles(tar);
  } catch (err) {
    throw new Error(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const member of MEMBERS) {
    const file = files.find((entry) => entry.name === member);
    if (file) return file.data.toString('utf8');
  }
  throw new Error(`${where} holds neither ${MEMBERS.join(' nor ')}`);
}
