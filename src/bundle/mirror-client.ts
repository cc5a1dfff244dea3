import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describeError } from '../core/errors.js';
import { digestOf } from '../proxy/digest.js';
import { DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from '../proxy/manifests.js';
import { type HttpResponse, drain, header, readBody, send, upstreamErrorMessage } from '../upstream/http.js';

/** A request to the mirror failed; the message names what was asked and what the mirror answered. */
export class MirrorRequestFailed extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

export interface MirrorManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** Reads manifests and blobs of one repository through a pullgate mirror, which caches what it fetches. */
export class MirrorClient {
  private readonly base: string;

  constructor(
    mirror: string,
    name: string,
    private readonly options: { authorization: string | undefined; dispatcher: Dispatcher; timeoutMs: number },
  ) {
    this.base = `${mirror.replace(/\/+$/, '')}/v2/${name}`;
  }

  /** A manifest by tag or digest, verified against the digest asked for (or the one the mirror names for a tag). */
  async manifest(reference: string): Promise<MirrorManifest> {
    const what = `manifest ${reference}`;
    const response = await this.get(`/manifests/${reference}`, what, { accept: DEFAULT_MANIFEST_ACCEPT });
    let bytes: Buffer;
    try {
      bytes = await readBody(response.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw new MirrorRequestFailed(`${what}: ${describeError(err)}`, undefined);
    }
    const named = reference.includes(':') ? reference : header(response.headers, 'docker-content-digest');
    const digest = digestOf(bytes, named ?? 'sha256:');
    if (named !== undefined && digest !== named) throw new MirrorRequestFailed(`${what}: the mirror sent content with digest ${digest}, not ${named}`, undefined);
    const mediaType = header(response.headers, 'content-type')?.split(';')[0]?.trim() ?? 'application/vnd.oci.image.manifest.v1+json';
    return { digest, mediaType, bytes };
  }

  /** A blob's body and length (the caller verifies its digest while reading it). */
  async blob(digest: string): Promise<{ size: number; body: Readable }> {
    const response = await this.get(`/blobs/${digest}`, `blob ${digest}`, {});
    const size = Number(header(response.headers, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0) {
      response.body.destroy();
      throw new MirrorRequestFailed(`blob ${digest}: the mirror sent no Content-Length`, undefined);
    }
    return { size, body: response.body };
  }

  private async get(path: string, what: string, headers: Record<string, string>): Promise<HttpResponse> {
    let response: HttpResponse;
    try {
      response = await send(`${this.base}${path}`, {
        method: 'GET',
        headers: { ...(this.options.authorization === undefined ? {} : { authorization: this.options.authorization }), ...headers },
        dispatcher: this.options.dispatcher,
        timeoutMs: this.options.timeoutMs,
      });
    } catch (err) {
      throw new MirrorRequestFailed(`${what}: ${describeError(err)}`, undefined);
    }
    if (response.status === 200) return response;
    const error = await upstreamErrorMessage(response.body);
    drain(response.body);
    const said = [error.code, error.message].filter((part) => part !== undefined).join(': ');
    throw new MirrorRequestFailed(`${what}: the mirror answered ${response.status}${said === '' ? '' : ` ${said}`}`, response.status);
  }
}
