import { Readable } from 'node:stream';

/** An upstream body in 64 KiB chunks, read only as fast as its consumer takes it; `pulled.bytes` counts what it handed out. */
export function pulledBody(bytes: Buffer, pulled: { bytes: number }): Readable {
  let at = 0;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (at >= bytes.length) {
        this.push(null);
        return;
      }
      const chunk = bytes.subarray(at, at + 64 * 1024);
      at += chunk.length;
      pulled.bytes = at;
      this.push(chunk);
    },
  });
}
