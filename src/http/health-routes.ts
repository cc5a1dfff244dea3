import type { FastifyInstance } from 'fastify';

const HEALTHY = '{"status":"ok"}';

/**
 * `/healthz` (the process answers) and `/readyz` (storage is writable; 503 with the reason when it
 * is not, while pullgate passes through without caching; 200 naming the reason when only the shared
 * store is unreachable or an upstream registry is failing, as pulls of what it holds go on, with each
 * registry's last outcome), for GET and for HEAD (no body).
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
      const { ready, storage, shared, upstreams } = await app.pullgate.ready();
      const degraded = shared !== undefined && !shared.reachable;
      // Registries asked since start and how their last request ended; failing ones leave pullgate ready.
      const known = upstreams !== undefined && Object.keys(upstreams).length > 0 ? { upstreams } : {};
      const failing = Object.values(upstreams ?? {}).some((upstream) => upstream.state === 'failing');
      const body = !ready
        ? JSON.stringify({ status: 'storage not writable', storage, ...(shared === undefined ? {} : { shared }), ...known })
        : degraded
          ? JSON.stringify({ status: 'shared store unreachable', shared, ...known })
          : failing
            ? JSON.stringify({ status: 'upstream failing', ...known })
            : HEALTHY;
      return reply
        .code(ready ? 200 : 503)
        .header('content-type', 'application/json')
        .header('content-length', Buffer.byteLength(body))
        .send(request.method === 'HEAD' ? undefined : body);
    },
  });
}
