export type FillState = 'filling' | 'verified' | 'failed';

/** A reader's place in a fill: the next byte it needs, and where it stops (exclusive). */
export interface FillCursor {
  position: number;
  readonly limit: number;
  /** True when this reader keeps the fill's file descriptor open. */
  readonly holdsFile: boolean;
}

/**
 * What a TailReader follows: a blob being filled whose bytes become readable as the fill goes on,
 * whose last byte is released only once verified, and which fails its readers on any error. A
 * BlobFill (this process fetches the blob) and a RemoteFill (another worker of this host fills it,
 * and this process reads the worker's temp file as told) are the two kinds.
 */
export interface FillSource {
  readonly state: FillState;
  readonly error: Error | undefined;
  /** Bytes of the blob the fill holds so far (all of them once verified). */
  readonly written: number;
  /** The blob's size when known (upstream's Content-Length). */
  readonly size: number | undefined;
  /** Registers a reader of bytes [start, end] (end inclusive, undefined for all); throws FillNotJoinable when they are no longer held. */
  attach(start: number, end: number | undefined): FillCursor;
  /** A reader is done with the fill. */
  detach(cursor: FillCursor): void;
  /** How far a reader may read (exclusive): everything once verified, else all but the last byte. */
  readableLimit(): number;
  /** Copies bytes from `position` (below `limit`) held in memory into `target`; 0 when none are. */
  copyRecent(position: number, limit: number, target: Buffer): number;
  /** Reads bytes that are on disk into `target`; resolves the count. */
  readFile(target: Buffer, length: number, position: number): Promise<number>;
  /** A reader moved on (a writer waiting for memory may go on). */
  moved(): void;
  /** Resolves at the fill's next progress: more bytes readable, verified or failed. */
  progressed(): Promise<void>;
}
