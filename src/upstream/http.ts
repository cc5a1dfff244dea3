import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { USER_AGENT } from '../core/version.js';

export type Headers = Record<string, string | string[] | undefined>;

/** One upstream HTTP exchange as the rest of pullgate sees it. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  /** Must be consumed or destroyed by the caller. */
  body: Readable;
  url: string;
}

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  dispatcher: Dispatcher;
  timeoutMs: number;
}

/** Sends one request with undici; never follows redirects (callers do, without Authorization). */
export async function send(url: string, options: SendOptions): Promise<HttpResponse> {
  const response = await request(url, {
    method: options.method,
    headers: { 'user-agent': USER_AGENT, ...options.headers },
    body: options.body,
    signal: options.signal,
    dispatcher: options.dispatcher,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return { status: response.statusCode, headers: response.headers, body: response.body, url };
}

/** First value of a header. */
export function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a body into memory, failing once it grows past `limit` bytes. */
export async function readBody(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLarge(limit);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** A body was larger than the caller's limit. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`response body larger than ${limit} bytes`);
  }
}

/** Discards a body so the connection can be reused. */
export function drain(body: Readable): void {
  body.resume();
  body.on('error', () => undefined);
}

/** Reads the message of an OCI JSON error body (`errors[0].message`, or `code`), if any. */
export async function upstreamErrorMessage(body: Readable): Promise<{ code?: string; message?: string }> {
  try {
    const parsed: unknown = JSON.parse((await readBody(body, 64 * 1024)).toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'errors' in parsed && Array.isArray(parsed.errors)) {
      const first: unknown = parsed.errors[0];
      if (first && typeof first === 'object') {
        const code = 'code' in first && typeof first.code === 'string' ? first.code : undefined;
        const message = 'message' in first && typeof first.message === 'string' ? first.message.slice(0, 300) : undefined;
        return { code, message };
      }
    }
  } catch {
    return {};
  }
  return {};
}
