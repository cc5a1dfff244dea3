import type { FastifyInstance } from 'fastify';

const HEALTHY = '{"status":"ok"}';

/**
 * `/healthz` (the process answers) and `/readyz` (storage is writable; 503 with the reason when it
 * is not, while pullgate passes through without caching; 200 naming the reason when only the shared
 * store is unreachable, as pulls go on), for GET and for HEAD (no body).
 */
export function registerHealthRoutes(app: FastifyInstance): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/healthz',
    handler: async (request, reply) =>
      reply
        .header('content-type', 'application/json')
        .header('content-length', Buffer.byteLength(HEALTHY))
        .send(request.method === 'HEAD' ? undefined : HEALTHY),
  });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/readyz',
    handler: async (request, reply) => {
      const { ready, storage, shared } = await app.pullgate.ready();
      const degraded = shared !== undefined && !shared.reachable;
      const body = !ready ? JSON.stringify({ status: 'storage not writable', storage, ...(shared === undefined ? {} : { shared }) }) : degraded ? JSON.stringify({ status: 'shared store unreachable', shared }) : HEALTHY;
      return reply
        .code(ready ? 200 : 503)
        .header('content-type', 'application/json')
        .header('content-length', Buffer.byteLength(body))
        .send(request.method === 'HEAD' ? undefined : body);
    },
  });
}
