import type { BlobFill } from '../cache/blob-fill.js';
import { linkForFollower } from '../cache/fill-handoff.js';
import { describeError } from '../core/errors.js';
import { encodeProgress, type ProgressEvent } from './fill-progress.js';

/** Where the reports go: a line at a time, then the end; `isClosed` says when the follower is gone. */
export interface ProgressSink {
  write(line: string): void;
  end(line: string): void;
  readonly isClosed: () => boolean;
}

/**
 * The owner's side of a follower on its host: the temp file's path (a link for this follower), then
 * each growth of the file, then `verified` once the digest matched and every byte is in the file — or
 * `failed` when the fill fails or stops writing its file (disk full: the rest is only in the owner's
 * memory, so the follower cuts its clients before their last byte). A fill whose file cannot be shared
 * is reported `uncached` (the follower asks for the bytes instead), or `cached` when it has just been stored.
 */
export async function reportFill(fill: BlobFill, sink: ProgressSink, storedNow: () => boolean): Promise<void> {
  const path = linkForFollower(fill);
  if (path === undefined) {
    sink.end(encodeProgress(fill.state === 'failed' ? failed(fill) : storedNow() ? { kind: 'cached' } : { kind: 'uncached' }));
    return;
  }
  sink.write(encodeProgress({ kind: 'file', path, size: fill.size }));
  let reported = 0;
  while (!sink.isClosed()) {
    if (fill.state === 'failed') return sink.end(encodeProgress(failed(fill)));
    if (fill.state === 'verified' && fill.fileBytes === fill.written) return sink.end(encodeProgress({ kind: 'verified', size: fill.written }));
    if (!fill.caching) return sink.end(encodeProgress({ kind: 'failed', reason: `the owner stopped writing blob ${fill.digest} to disk after ${fill.fileBytes} bytes` }));
    // The follower's client has no headers before its first bytes: those need not wait for a full batch.
    if (reported === 0 && fill.fileBytes === 0 && fill.written > 0) fill.flushToFile();
    if (fill.fileBytes > reported) {
      reported = fill.fileBytes;
      sink.write(encodeProgress({ kind: 'bytes', count: reported }));
    }
    // Not raced with `closed`: a fill always progresses to its end (bounded by the upstream timeout), and a
    // race would add a reaction to `closed` per wake-up, kept until the follower goes.
    await fill.progressed();
  }
}

function failed(fill: BlobFill): ProgressEvent {
  return { kind: 'failed', reason: fill.error === undefined ? 'the owner\'s fill failed' : describeError(fill.error) };
}
