import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { type ByteRange, type ContentInfo, type ContentPage, type ContentStore, DEFAULT_PAGE, type LinkStore, type Presigner, type PutOutcome, splitDigest } from './content-store.js';

/** Where the bucket is and how to talk to it; credentials come from the AWS SDK's default chain. */
export interface S3StoreOptions {
  /** Omit for AWS S3; `http://host:port` for RGW, MinIO, R2 … */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Key prefix (`cache/`); objects live under `<prefix>blobs/<algorithm>/<hex>`. */
  prefix: string;
  forcePathStyle: boolean;
  /** Objects of at least this many bytes are uploaded in parts (default 64 MiB). */
  multipartThreshold?: number;
  /** Size of each part (default 16 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
  /** Where the SDK's own messages go (at debug level); without one they are dropped. */
  logger?: Logger;
}

const DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024;
const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/** Longest wait for a connection to the store. */
const CONNECT_TIMEOUT_MS = 3_000;
/** Longest silence on an open request before it is given up. */
const INACTIVITY_TIMEOUT_MS = 30_000;
/** Parts uploaded at once. */
const PART_CONCURRENCY = 4;

type S3Sdk = typeof import('@aws-sdk/client-s3');

interface Connection {
  sdk: S3Sdk;
  client: S3Client;
}

function status(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const metadata = err.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('httpStatusCode' in metadata)) return undefined;
  return typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

/** 412: `If-None-Match: *` met an existing object; 409: a concurrent conditional write is in progress. */
function lostRace(err: unknown): boolean {
  const code = status(err);
  return code === 412 || code === 409;
}

function notFound(err: unknown): boolean {
  return status(err) === 404 || (err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound'));
}

/** The SDK's messages at pullgate's debug level (a lost `If-None-Match` race is expected, not a warning). */
function sdkLogger(logger: Logger | undefined): { debug(...content: unknown[]): void; info(...content: unknown[]): void; warn(...content: unknown[]): void; error(...content: unknown[]): void } {
  // The SDK passes its own objects (requests, sockets): only strings are logged, so nothing is serialised that cannot be.
  const log = (...content: unknown[]): void => {
    if (logger === undefined || !logger.isLevelEnabled('debug')) return;
    const text = content.filter((item): item is string => typeof item === 'string').join(' ');
    if (text !== '') logger.debug({ sdk: text }, 's3 client');
  };
  return { debug: log, info: log, warn: log, error: log };
}

/** `s3://bucket/prefix/ HeadObject: HTTP 403 AccessDenied: … (hint)` from an SDK error. */
export function explainS3Error(location: string, command: string, err: Error): string {
  const operation = command.replace(/Command$/, '');
  const code = status(err);
  const original = err.message === '' || err.message === err.name || err.message === 'UnknownError' ? '' : `: ${err.message}`;
  const answered = code === undefined ? `${err.name}${original}` : `HTTP ${code} ${err.name}${original}`;
  const hint =
    code === 401 || code === 403 || err.name === 'CredentialsProviderError'
      ? ' (check the credentials the AWS SDK finds: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance role)'
      : code === 301 || err.name === 'PermanentRedirect'
        ? ' (the bucket is in another region: set storage.s3.region)'
        : '';
  return `${location} ${operation}: ${answered}${hint}`;
}

/** Normalises a configured prefix to `""` or `something/`. */
export function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

/**
 * Content in an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, R2, GCS interoperability). Callers put
 * content they verified from a staged local file, so an object appears only complete and verified:
 * `PutObject` with `If-None-Match: *` (the first writer wins), or a multipart upload that is completed
 * only once every part is up, and aborted otherwise. The SDK is loaded on first use, so a config
 * without S3 does not pay for it.
 */
export class S3ContentStore implements ContentStore, LinkStore, Presigner {
  private connection: Promise<Connection> | undefined;
  private readonly prefix: string;
  private readonly multipartThreshold: number;
  private readonly partSize: number;

  constructor(private readonly options: S3StoreOptions) {
    this.prefix = normalisePrefix(options.prefix);
    this.multipartThreshold = options.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
    this.partSize = Math.max(5 * 1024 * 1024, options.partSize ?? DEFAULT_PART_SIZE);
  }

  get location(): string {
    return `s3://${this.options.bucket}/${this.prefix}`;
  }

  /** The object key of a digest. */
  keyOf(digest: string): string {
    const [algorithm, hex] = splitDigest(digest);
    return `${this.prefix}blobs/${algorithm}/${hex}`;
  }

  private digestOf(key: string): string | undefined {
    const rest = key.slice(this.prefix.length + 'blobs/'.length);
    const slash = rest.indexOf('/');
    if (!key.startsWith(`${this.prefix}blobs/`) || slash <= 0 || rest.indexOf('/', slash + 1) !== -1) return undefined;
    return `${rest.slice(0, slash)}:${rest.slice(slash + 1)}`;
  }

  private connect(): Promise<Connection> {
    this.connection ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      client: this.explainErrors(new sdk.S3Client({
        ...(this.options.endpoint === undefined ? {} : { endpoint: this.options.endpoint }),
        region: this.options.region,
        forcePathStyle: this.options.forcePathStyle,
        // Checksums on every request make streamed uploads fail on RGW (411) and cost CPU; the content
        // is verified against its digest by pullgate itself.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // Without a logger of its own the SDK writes some messages (a 412 on a streamed PUT) to the console.
        logger: sdkLogger(this.options.logger),
        // An unreachable store must not hold a pull up: give up on a connection quickly and on a stalled
        // response after a while (the socket's inactivity, not the transfer's length), and retry once.
        requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: INACTIVITY_TIMEOUT_MS },
        maxAttempts: 2,
      })),
    }));
    return this.connection;
  }

  /**
   * Rewrites the message of every error the client throws (after its retries) to say which store,
   * which operation and what the store answered, with a hint for refused credentials; the error's
   * name and status stay as they were, so callers still tell a 404 or a 412 apart.
   */
  private explainErrors(client: S3Client): S3Client {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          return await next(args);
        } catch (err) {
          if (err instanceof Error) err.message = explainS3Error(this.location, context.commandName ?? 'request', err);
          throw err;
        }
      },
      { step: 'initialize', name: 'pullgateExplainErrors' },
    );
    return client;
  }

  async putFile(digest: string, file: string, size: number, options: { move?: boolean } = {}): Promise<PutOutcome> {
    try {
      if (size >= this.multipartThreshold) return await this.putInParts(digest, file, size);
      const { sdk, client } = await this.connect();
      const body = size === 0 ? Buffer.alloc(0) : createReadStream(file);
      try {
        await client.send(new sdk.PutObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest), Body: body, ContentLength: size, IfNoneMatch: '*' }));
        return 'created';
      } catch (err) {
        if (lostRace(err)) return 'exists';
        throw err;
      } finally {
        if (body instanceof Readable) body.destroy();
      }
    } finally {
      if (options.move === true) await rm(file, { force: true });
    }
  }

  private async putInParts(digest: string, file: string, size: number): Promise<PutOutcome> {
    if ((await this.stat(digest)) !== undefined) return 'exists';
    const { sdk, client } = await this.connect();
    const Bucket = this.options.bucket;
    const Key = this.keyOf(digest);
    const created = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }));
    const UploadId = created.UploadId;
    if (UploadId === undefined) throw new Error(`S3 CreateMultipartUpload for ${Key} returned no upload id`);
    try {
      const count = Math.ceil(size / this.partSize);
      const etags: string[] = new Array<string>(count);
      let nextPart = 0;
      const worker = async (): Promise<void> => {
        while (nextPart < count) {
          const index = nextPart++;
          const start = index * this.partSize;
          const end = Math.min(size, start + this.partSize) - 1;
          const body = createReadStream(file, { start, end });
          try {
            const part = await client.send(
              new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber: index + 1, Body: body, ContentLength: end - start + 1 }),
            );
            if (part.ETag === undefined) throw new Error(`S3 UploadPart ${index + 1} of ${Key} returned no ETag`);
            etags[index] = part.ETag;
          } finally {
            body.destroy();
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, worker));
      await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          IfNoneMatch: '*',
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
      return 'created';
    } catch (err) {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      if (lostRace(err)) return 'exists';
      throw err;
    }
  }

  async putBytes(digest: string, bytes: Buffer): Promise<PutOutcome> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest), Body: bytes, ContentLength: bytes.length, IfNoneMatch: '*' }));
      return 'created';
    } catch (err) {
      if (lostRace(err)) return 'exists';
      throw err;
    }
  }

  async openRead(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const answer = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest), ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }) }),
      );
      const body = answer.Body;
      if (body instanceof Readable) return body;
      if (body === undefined) return Readable.from([]);
      throw new Error(`S3 GetObject for ${digest} returned a body that is not a Node stream`);
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async stat(digest: string): Promise<ContentInfo | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest) }));
      return { digest, size: head.ContentLength ?? 0, modifiedAt: head.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  /** Copies the object onto itself (S3's way to renew LastModified); the bytes are not re-sent by the client. */
  async refresh(digest: string): Promise<boolean> {
    const { sdk, client } = await this.connect();
    const Key = this.keyOf(digest);
    try {
      await client.send(
        new sdk.CopyObjectCommand({
          Bucket: this.options.bucket,
          Key,
          CopySource: `${this.options.bucket}/${Key}`,
          MetadataDirective: 'REPLACE',
          Metadata: { 'pullgate-read': new Date().toISOString() },
        }),
      );
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    const { sdk, client } = await this.connect();
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest) }));
  }

  async list(options: { after?: string; limit?: number } = {}): Promise<ContentPage> {
    const { sdk, client } = await this.connect();
    const limit = Math.max(1, Math.min(1000, options.limit ?? DEFAULT_PAGE));
    const answer = await client.send(
      new sdk.ListObjectsV2Command({
        Bucket: this.options.bucket,
        Prefix: `${this.prefix}blobs/`,
        MaxKeys: limit,
        ...(options.after === undefined ? {} : { StartAfter: this.keyOf(options.after) }),
      }),
    );
    const items: ContentInfo[] = [];
    let last: string | undefined;
    for (const object of answer.Contents ?? []) {
      if (object.Key === undefined) continue;
      const digest = this.digestOf(object.Key);
      if (digest === undefined) continue;
      last = digest;
      items.push({ digest, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 });
    }
    return { items, next: answer.IsTruncated === true ? last : undefined };
  }

  /** The key of a link marker: `<prefix>links/<registry>/<repository>/<algorithm>/<hex>` (an empty object). */
  private linkKey(registry: string, repository: string, digest: string): string {
    const [algorithm, hex] = splitDigest(digest);
    if (!/^[a-z0-9.:-]+$/.test(registry) || repository.split('/').some((part) => part === '' || part === '.' || part === '..')) {
      throw new Error(`not a repository: ${registry}/${repository}`);
    }
    return `${this.prefix}links/${registry}/${repository}/${algorithm}/${hex}`;
  }

  async isLinked(registry: string, repository: string, digest: string): Promise<boolean> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.options.bucket, Key: this.linkKey(registry, repository, digest) }));
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  }

  async link(registry: string, repository: string, digest: string): Promise<void> {
    const { sdk, client } = await this.connect();
    await client.send(new sdk.PutObjectCommand({ Bucket: this.options.bucket, Key: this.linkKey(registry, repository, digest), Body: Buffer.alloc(0), ContentLength: 0 }));
  }

  /** A time-limited URL that lets a client GET the object without credentials (for `redirect: true`). */
  async presignedUrl(digest: string, expiresInSeconds: number): Promise<string> {
    const { sdk, client } = await this.connect();
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    return getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(digest) }), { expiresIn: expiresInSeconds });
  }

  /** Closes the SDK's connections. */
  async close(): Promise<void> {
    if (this.connection === undefined) return;
    (await this.connection).client.destroy();
  }
}
