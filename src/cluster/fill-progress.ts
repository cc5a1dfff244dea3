import { isRecord } from '../util/is-record.js';

/**
 * What the owner of a digest tells a follower on its host about its fill, one JSON object a line:
 * - `cached`: the blob is stored already (read it through the index);
 * - `uncached`: the fill is not being written to disk (ask for its bytes instead);
 * - `file`: the path of the fill's temp file (a link made for this follower) and the size when known;
 * - `bytes`: bytes [0, count) are in the file;
 * - `verified`: the digest matched, `size` bytes, all in the file;
 * - `failed`: the fill failed (its reason), or stopped writing its file.
 */
export type ProgressEvent =
  | { kind: 'cached' }
  | { kind: 'uncached' }
  | { kind: 'file'; path: string; size: number | undefined }
  | { kind: 'bytes'; count: number }
  | { kind: 'verified'; size: number }
  | { kind: 'failed'; reason: string };

/** One event as its line on the wire. */
export function encodeProgress(event: ProgressEvent): string {
  return `${JSON.stringify(event)}\n`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Parses one line; throws on anything that is not an event. */
export function decodeProgress(line: string): ProgressEvent {
  const value: unknown = JSON.parse(line);
  if (!isRecord(value)) throw new Error('fill progress: not an object');
  switch (value.kind) {
    case 'cached':
    case 'uncached':
      return { kind: value.kind };
    case 'file':
      if (typeof value.path !== 'string' || value.path === '') break;
      if (value.size !== undefined && !isCount(value.size)) break;
      return { kind: 'file', path: value.path, size: value.size };
    case 'bytes':
      if (!isCount(value.count)) break;
      return { kind: 'bytes', count: value.count };
    case 'verified':
      if (!isCount(value.size)) break;
      return { kind: 'verified', size: value.size };
    case 'failed':
      return { kind: 'failed', reason: typeof value.reason === 'string' ? value.reason : 'the owner did not say why' };
    default:
      break;
  }
  throw new Error(`fill progress: malformed event ${line.slice(0, 200)}`);
}

/** Longest line accepted: events are short, anything longer is not the owner talking. */
const MAX_LINE = 64 * 1024;

/** Splits a stream of chunks into events, keeping a partial last line for the next chunk. */
export class ProgressLines {
  private partial = '';

  /** The events completed by `chunk`; throws on a malformed line. */
  push(chunk: Buffer | string): ProgressEvent[] {
    const text = this.partial + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_LINE) throw new Error('fill progress: line too long');
    return lines.filter((line) => line !== '').map(decodeProgress);
  }
}
