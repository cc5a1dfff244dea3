import { request, type Dispatcher } from 'undici';
import { isRecord } from '../../util/is-record.js';
import { USER_AGENT } from '../../core/version.js';

/** Time limit for a cloud identity call (metadata server, AAD, ACR exchange). */
export const IDENTITY_TIMEOUT_MS = 10_000;
const MAX_BODY = 256 * 1024;

/** A JSON answer: its status and parsed body (undefined when the body is not JSON). */
export interface JsonAnswer {
  status: number;
  body: Record<string, unknown> | undefined;
}

/** Sends one request and reads a small JSON answer; network failures throw with the URL's origin named. */
export async function fetchJson(
  url: string,
  options: {
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    /** Sent as application/x-www-form-urlencoded. */
    form?: Record<string, string>;
    /** Sent as application/json (when no form is given). */
    json?: unknown;
    dispatcher: Dispatcher | undefined;
  },
): Promise<JsonAnswer> {
  const body = options.form ? new URLSearchParams(options.form).toString() : options.json !== undefined ? JSON.stringify(options.json) : undefined;
  const type = options.form ? 'application/x-www-form-urlencoded' : 'application/json';
  const headers = { 'user-agent': USER_AGENT, ...(body !== undefined ? { 'content-type': type } : {}), ...options.headers };
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, {
      method: options.method ?? 'GET',
      headers,
      body,
      headersTimeout: IDENTITY_TIMEOUT_MS,
      bodyTimeout: IDENTITY_TIMEOUT_MS,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${new URL(url).origin} is unreachable (${code ?? (err instanceof Error ? err.message : String(err))})`);
  }
  const text = await response.body.text();
  let parsed: unknown;
  try {
    parsed = text.length > MAX_BODY ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const record = isRecord(parsed) ? parsed : undefined;
  return { status: response.statusCode, body: record };
}

/** A string field of a JSON answer, or undefined. */
export function stringField(body: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = body?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A numeric field (numbers or numeric strings, as IMDS sends them), or undefined. */
export function numberField(body: Record<string, unknown> | undefined, name: string): number | undefined {
  const value = body?.[name];
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(number) ? number : undefined;
}
