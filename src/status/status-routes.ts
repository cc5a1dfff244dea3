import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { StatusCollector } from './collector.js';
import { renderStatusPage } from './render-html.js';
import type { StatusAccess } from './status-access.js';

/** The paths of the status page and its JSON. */
export const STATUS_PAGE = '/';
export const STATUS_API = '/api/status';

/** The body and headers of one status answer; a refusal is thrown (StatusAccess) for the error map. */
async function answer(path: string, collector: StatusCollector): Promise<{ contentType: string; body: string }> {
  const report = await collector.report();
  return path === STATUS_API
    ? { contentType: 'application/json; charset=utf-8', body: JSON.stringify(report) }
    : { contentType: 'text/html; charset=utf-8', body: renderStatusPage(report) };
}

/** Headers every status answer carries: never cached, and the page may load nothing from anywhere. */
const HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
} as const;

/** `GET /` (the HTML status page) and `GET /api/status` (the same facts as JSON) on the main listener, behind `access`. */
export function registerStatusRoutes(app: FastifyInstance, collector: StatusCollector, access: StatusAccess): void {
  for (const url of [STATUS_PAGE, STATUS_API]) {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      handler: async (request, reply) => {
        await access.check({ authorization: request.headers.authorization, address: request.ip, socket: request.raw.socket });
        const { contentType, body } = await answer(url, collector);
        return reply
          .headers(HEADERS)
          .header('content-type', contentType)
          .header('content-length', Buffer.byteLength(body))
          .send(request.method === 'HEAD' ? undefined : body);
      },
    });
  }
}

/**
 * The same two answers for a listener of node:http (`metrics.listen`): resolves false, having written
 * nothing, when the path is not one of them; throws a refusal for the caller's error answer.
 */
export function statusHandler(collector: StatusCollector, access: StatusAccess): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> {
  return async (req, res, path) => {
    if (path !== STATUS_PAGE && path !== STATUS_API) return false;
    await access.check({ authorization: req.headers.authorization, address: req.socket.remoteAddress ?? 'unknown', socket: req.socket });
    const { contentType, body } = await answer(path, collector);
    res.writeHead(200, { ...HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
