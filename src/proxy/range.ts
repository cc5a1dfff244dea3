import { RangeNotSatisfiable } from '../core/errors.js';

/** A resolved byte range, inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Resolves a single `bytes=` range against a size. Returns undefined when there is no usable
 * Range (absent, multi-range or malformed: the full body is served, as RFC 9110 allows);
 * throws RangeNotSatisfiable when it starts past the end.
 */
export function resolveRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw new RangeNotSatisfiable(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) throw new RangeNotSatisfiable(size);
  return { start, end };
}
