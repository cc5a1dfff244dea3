import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidParameter } from '../core/errors.js';
import { assertDigest, parseManifestReference } from '../routing/reference.js';
import type { Route } from '../routing/route.js';
import type { RequestFacts } from './services.js';
import { clientSignal } from './client-signal.js';
import { manifestHeaders } from './manifest-headers.js';
import { ChunkSender } from './send-chunks.js';
import type { Preflight } from './preflight.js';

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
/** The route of the whole pull API. */
const V2_ROUTE = '/v2/*';
/** Largest page size accepted for tags/list. */
const MAX_PAGE = 10_000;

function paginationQuery(query: URLSearchParams): URLSearchParams {
  const upstream = new URLSearchParams();
  const n = query.get('n');
  if (n !== null) {
    if (!/^\d{1,6}$/.test(n) || Number(n) > MAX_PAGE) throw new InvalidParameter(`n must be an integer between 0 and ${MAX_PAGE}`);
    upstream.set('n', n);
  }
  const last = query.get('last');
  if (last !== null) upstream.set('last', last);
  return upstream;
}

async function manifest(request: FastifyRequest, reply: FastifyReply, target: Route, reference: string): Promise<void> {
  const signal = clientSignal(request, reply);
  const answer = await request.server.pullgate.manifests.get({
    route: target,
    reference: parseManifestReference(reference),
    method: request.method === 'HEAD' ? 'HEAD' : 'GET',
    accept: request.headers.accept,
    get signal() {
      return signal();
    },
  });
  if (request.facts) request.facts.source = answer.source;
  void reply.headers(manifestHeaders(answer));
  await reply.send(answer.body);
}

async function blob(request: FastifyRequest, reply: FastifyReply, target: Route, digest: string): Promise<void> {
  assertDigest(digest);
  const range = request.headers.range;
  const signal = clientSignal(request, reply);
  const answer = await request.server.pullgate.blobs.get({
    route: target,
    digest,
    method: request.method === 'HEAD' ? 'HEAD' : 'GET',
    range: typeof range === 'string' ? range : undefined,
    get signal() {
      return signal();
    },
  });
  if (request.facts) {
    request.facts.source = answer.source;
    request.facts.bytes = answer.body ? answer.length : 0;
  }
  if (answer.status === 307 && answer.location !== undefined) {
    // The shared store serves the bytes: the client follows a short-lived presigned URL.
    await reply.code(307).headers(API_VERSION).header('docker-content-digest', digest).header('location', answer.location).header('content-length', 0).send();
    return;
  }
  void reply
    .code(answer.status)
    .headers(API_VERSION)
    .header('content-type', 'application/octet-stream')
    .header('docker-content-digest', digest)
    .header('accept-ranges', 'bytes')
    .header('etag', `"${digest}"`);
  if (Number.isFinite(answer.length)) void reply.header('content-length', answer.length);
  if (answer.contentRange) void reply.header('content-range', answer.contentRange);
  const body = answer.body;
  if (body === undefined || body instanceof Readable) {
    await reply.send(body);
    return;
  }
  // From the cache: written with reused buffers, outside Fastify's stream handling (onResponse still logs it).
  const sender = new ChunkSender(body, request.server.pullgate.sendBuffers);
  let first: Buffer | null;
  try {
    first = await sender.first();
  } catch (err) {
    body.close();
    throw err; // nothing sent yet: answered as an OCI error
  }
  reply.hijack();
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) reply.raw.setHeader(name, typeof value === 'number' ? String(value) : value);
  }
  reply.raw.writeHead(reply.statusCode);
  try {
    await sender.sendTo(reply.raw, first);
  } catch (err) {
    // A client that hangs up is routine; a source that fails mid-body (upstream cut, digest mismatch) is not.
    const clientLeft = reply.raw.destroyed;
    request.log[clientLeft ? 'debug' : 'warn']({ digest, err: err instanceof Error ? err.message : String(err) }, 'blob response cut short');
    reply.raw.destroy();
  } finally {
    body.close();
  }
}

async function tags(request: FastifyRequest, reply: FastifyReply, target: Route, clientName: string, query: URLSearchParams): Promise<void> {
  const answer = await request.server.pullgate.listings.tags(target, paginationQuery(query), clientSignal(request, reply)());
  if (answer.next) {
    const next = paginationQuery(answer.next);
    const ns = query.get('ns');
    if (ns !== null) next.set('ns', ns);
    void reply.header('link', `</v2/${clientName}/tags/list?${next.toString()}>; rel="next"`);
  }
  await reply.headers(API_VERSION).header('content-type', answer.contentType).send(answer.body);
}

async function referrers(request: FastifyRequest, reply: FastifyReply, target: Route, digest: string, query: URLSearchParams): Promise<void> {
  assertDigest(digest);
  const upstream = new URLSearchParams();
  const artifactType = query.get('artifactType');
  if (artifactType !== null) upstream.set('artifactType', artifactType);
  const answer = await request.server.pullgate.listings.referrers(target, digest, upstream, clientSignal(request, reply)());
  await reply.headers(API_VERSION).headers(answer.headers).header('content-type', answer.contentType).send(answer.body);
}

/**
 * The OCI distribution pull API under /v2/; push methods answer 405 UNSUPPORTED. Every /v2 request
 * first passes the preflight (the one the manifest hot path uses too): authentication, routing, the
 * registry's fetch filter and clients.access.
 */
export function registerV2Routes(app: FastifyInstance, preflight: Preflight): void {
  app.decorateRequest('passed', null);
  app.addHook('onRequest', async (request, reply) => {
    const facts: RequestFacts = { endpoint: 'other' };
    request.facts = facts;
    // Whatever routed the request to /v2/* passes the preflight too (a target the router read differently is refused there, never skipped).
    const v2 = request.url === '/v2' || request.url.startsWith('/v2/') || request.url.startsWith('/v2?') || request.routeOptions.url === V2_ROUTE;
    if (!v2) return;
    request.passed = await preflight.run({ method: request.method, url: request.url, headers: request.headers, address: request.ip, socket: request.raw.socket, response: reply.raw }, facts);
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: V2_ROUTE,
    handler: async (request, reply) => {
      const passed = request.passed;
      if (passed === null) throw new Error('the /v2 preflight did not run');
      const { target, route: routed } = passed;
      if (target.endpoint === 'base' || routed === undefined) {
        await reply.headers(API_VERSION).header('content-type', 'application/json').send('{}');
        return;
      }
      const query = new URLSearchParams(passed.search);
      switch (target.endpoint) {
        case 'manifest':
          return manifest(request, reply, routed, target.reference);
        case 'blob':
          return blob(request, reply, routed, target.digest);
        case 'tags':
          return tags(request, reply, routed, target.name, query);
        case 'referrers':
          return referrers(request, reply, routed, target.digest, query);
      }
    },
  });
}
