import { readFile } from 'node:fs/promises';

/** One request as the distribution registry's combined-format access log records it. */
export interface AccessEntry {
  method: string;
  uri: string;
  status: number;
  userAgent: string;
}

// 127.0.0.1 - - [22/Nov/2026:02:29:53 +0000] "HEAD /v2/e2e/app/blobs/sha256:… HTTP/1.1" 404 157 "" "skopeo/1.9.3"
const LINE = /^\S+ \S+ \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

/** Parses the access-log lines out of a registry log file (other log lines are ignored). */
export async function readAccessLog(logPath: string): Promise<AccessEntry[]> {
  const text = await readFile(logPath, 'utf8');
  const entries: AccessEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined || m[4] === undefined) continue;
    entries.push({ method: m[1], uri: m[2], status: Number(m[3]), userAgent: m[4] });
  }
  return entries;
}
