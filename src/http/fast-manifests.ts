import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { parseManifestReference } from '../routing/reference.js';
import { accessRecord } from './access-log.js';
import type { ClientAuth } from './client-auth.js';
import type { ManifestAnswer } from '../proxy/types.js';
import { manifestHeaders } from './manifest-headers.js';
import type { RequestFacts, Services } from './services.js';
import { parseV2Path } from './v2-path.js';

export interface FastManifestOptions {
  services: Services;
  logger: FastifyBaseLogger;
  /** Set when clients must authenticate: only a header that already passed is served here. */
  auth: ClientAuth | undefined;
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
 * handles it, with all the validation, errors and hooks of the ordinary path. Headers, body and
 * the access-log line are the ones the ordinary path would produce.
 */
export function fastManifestHandler(options: FastManifestOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { services, logger, auth, requestId, open } = options;
  const manifests = services.manifests;
  if (manifests.fresh === undefined) return () => false;
  const fresh = manifests.fresh.bind(manifests);
  return (req, res) => {
    const method = req.method;
    const url = req.url;
    if ((method !== 'GET' && method !== 'HEAD') || url === undefined || !url.startsWith('/v2/') || !url.includes('/manifests/')) return false;
    if (!open() || (auth !== undefined && !auth.trusted(req.headers.authorization))) return false;
    const started = performance.now();
    const query = url.indexOf('?');
    let facts: RequestFacts;
    let answer: ManifestAnswer | undefined;
    try {
      const target = parseV2Path(query === -1 ? url : url.slice(0, query));
      if (target?.endpoint !== 'manifest') return false;
      const ns = query === -1 ? undefined : (new URLSearchParams(url.slice(query + 1)).get('ns') ?? undefined);
      const routed = services.router.route(target.name, ns);
      answer = fresh({ route: routed, reference: parseManifestReference(target.reference), method, accept: req.headers.accept });
      facts = { endpoint: 'manifest', registry: routed.registry, repository: routed.repository, source: answer?.source };
    } catch {
      // Invalid name, reference or routing: the ordinary path answers with the proper OCI error.
      return false;
    }
    if (answer === undefined) return false;
    res.writeHead(200, manifestHeaders(answer));
    res.end(answer.body);
    const id = requestId();
    const size = answer.size;
    res.once('close', () => {
      logger.info(
        { reqId: id, ...accessRecord(method, url, facts, 200, size, res.writableFinished, performance.now() - started) },
        'request',
      );
    });
    return true;
  };
}
