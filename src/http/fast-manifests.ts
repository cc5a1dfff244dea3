import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { parseManifestReference } from '../routing/reference.js';
import { accessRecord, withWeight } from './access-log.js';
import type { AccessSampling } from './access-sampling.js';
import type { Preflight } from './preflight.js';
import type { ManifestAnswer } from '../proxy/types.js';
import { ManifestHeaderMemo } from './manifest-headers.js';
import type { RequestFacts, Services } from './services.js';

export interface FastManifestOptions {
  services: Services;
  logger: FastifyBaseLogger;
  /** The checks every /v2/ request passes (the same object the ordinary routes use). */
  preflight: Preflight;
  /** Which requests are logged (`log.access`); the same object the ordinary path uses. */
  sampling: AccessSampling;
  /** The request id for the log line, from the same sequence Fastify uses. */
  requestId: () => string;
  /** False once the server is closing, so Fastify answers (503) from then on. */
  open: () => boolean;
}

/**
 * The hot path: a GET or HEAD of a manifest the cache answers without upstream (a tag within its
 * TTL, a linked digest) is written straight to the socket, before Fastify's routing, hooks and
 * reply machinery, which cost more than the answer itself (kubelets and CI runners ask for the
 * same tags all day). Returns false, having written nothing, for every other request: Fastify then
 * handles it, with all the validation, errors and hooks of the ordinary path. The checks are the
 * ordinary path's own (Preflight: authentication, routing, fetch filter, access rules); headers,
 * body and the access-log line are the ones the ordinary path would produce.
 */
export function fastManifestHandler(options: FastManifestOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { services, logger, preflight, requestId, open, sampling } = options;
  const manifests = services.manifests;
  if (manifests.fresh === undefined) return () => false;
  const fresh = manifests.fresh.bind(manifests);
  const headers = new ManifestHeaderMemo();
  return (req, res) => {
    const method = req.method;
    const url = req.url;
    if ((method !== 'GET' && method !== 'HEAD') || url === undefined || !url.startsWith('/v2/') || !url.includes('/manifests/')) return false;
    if (!open()) return false;
    const started = performance.now();
    // Authenticate, route, authorize: refused or needing bcrypt → the ordinary path answers it.
    const checked = { method, url, headers: req.headers, address: req.socket.remoteAddress ?? 'unknown', socket: req.socket, response: res };
    const passed = preflight.now(checked);
    if (passed?.target.endpoint !== 'manifest' || passed.route === undefined) return false;
    const routed = passed.route;
    let facts: RequestFacts;
    let answer: ManifestAnswer | undefined;
    try {
      answer = fresh({ route: routed, reference: parseManifestReference(passed.target.reference), method, accept: req.headers.accept });
      facts = { endpoint: 'manifest', user: passed.subject.user, registry: routed.registry, repository: routed.repository, source: answer?.source };
    } catch {
      // Invalid name, reference or routing: the ordinary path answers with the proper OCI error.
      return false;
    }
    if (answer === undefined) return false;
    // clients.limits: over a limit → the ordinary path answers 429 (and logs and counts it).
    if (!preflight.admit(passed, checked)) return false;
    res.writeHead(200, headers.get(answer));
    res.end(answer.body);
    const id = requestId();
    const size = answer.size;
    res.once('close', () => {
      const weight = sampling.weight(200, facts.source, res.writableFinished);
      if (weight === 0) return;
      logger.info(
        { reqId: id, ...withWeight(weight, accessRecord(method, url, facts, 200, size, res.writableFinished, performance.now() - started, req.headers['user-agent'])) },
        'request',
      );
    });
    return true;
  };
}
