import type { Readable } from 'node:stream';
import { isFollowerLink } from '../cache/fill-handoff.js';
import { RemoteFill } from '../cache/remote-fill.js';
import { OwnerUnavailable, UpstreamUnavailable, describeError } from '../core/errors.js';
import { ProgressLines, type ProgressEvent } from './fill-progress.js';

/** The owner's first word on a digest: stored, not on disk (ask for the bytes), or a fill to follow from its file. */
export type FollowAnswer = { kind: 'cached' } | { kind: 'uncached' } | { kind: 'fill'; fill: RemoteFill };

/** What the fill is told by an event after the first; false when the event makes no sense there. */
function apply(fill: RemoteFill, event: ProgressEvent, owner: string): boolean {
  switch (event.kind) {
    case 'bytes':
      fill.fileHas(event.count);
      return true;
    case 'verified':
      fill.verify(event.size);
      return true;
    case 'failed':
      fill.fail(new UpstreamUnavailable(fill.registry, `blob ${fill.digest}: the worker filling it (${owner}) failed: ${event.reason}`, true));
      return true;
    default:
      return false;
  }
}

/**
 * Reads the owner's progress reports (`reports`, the body of its fill endpoint) and resolves with its first
 * word; a fill is then driven by the later reports until verified or failed. Reports that end (the owner
 * died, the socket closed) or go wrong before `verified` fail the fill, and so cut its readers before their
 * last byte. Rejects with OwnerUnavailable when no first word comes (down: the owner went away) or it
 * cannot be used (not down: a file that does not open, a report out of place — the caller asks for bytes).
 */
export function followReports(reports: Readable, owner: string, digest: string, registry: string, repository: string): Promise<FollowAnswer> {
  return new Promise((resolve, reject) => {
    const lines = new ProgressLines();
    let fill: RemoteFill | undefined;
    let answered = false;
    const stop = (reason: string, down: boolean): void => {
      if (!answered) {
        answered = true;
        reject(new OwnerUnavailable(owner, `cluster worker ${owner} ${reason} for ${digest}`, down));
      }
      fill?.fail(new UpstreamUnavailable(registry, `blob ${digest}: the worker filling it (${owner}) ${reason}`, true));
      reports.destroy();
    };
    const first = (event: ProgressEvent): void => {
      answered = true;
      if (event.kind === 'cached' || event.kind === 'uncached') {
        resolve({ kind: event.kind });
        reports.destroy();
        return;
      }
      if (event.kind !== 'file') {
        answered = false;
        stop(`began its reports with "${event.kind}"`, false);
        return;
      }
      if (!isFollowerLink(event.path)) {
        answered = false;
        stop('named a file that is not a follower\'s link to a fill', false);
        return;
      }
      try {
        fill = new RemoteFill(digest, event.path, true, event.size, registry, repository);
      } catch (err) {
        answered = false;
        stop(`gave a file that does not open here (${describeError(err)})`, false);
        return;
      }
      resolve({ kind: 'fill', fill });
    };
    reports.on('data', (chunk: Buffer) => {
      let events: ProgressEvent[];
      try {
        events = lines.push(chunk);
      } catch (err) {
        stop(`sent a malformed report (${describeError(err)})`, false);
        return;
      }
      for (const event of events) {
        if (!answered) first(event);
        else if (fill === undefined) return;
        else if (!apply(fill, event, owner)) stop(`sent "${event.kind}" in the middle of its reports`, false);
      }
    });
    reports.on('end', () => stop('ended its reports before the blob was verified', true));
    reports.on('error', (err) => stop(`cut its reports (${describeError(err)})`, true));
    reports.on('close', () => stop('closed its reports before the blob was verified', true));
  });
}
