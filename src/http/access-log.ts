import type { FastifyInstance } from 'fastify';

/** One log line per request: method, path, endpoint, upstream registry, status, bytes, duration. */
export function registerAccessLog(app: FastifyInstance): void {
  app.decorateRequest('facts', null);
  app.addHook('onResponse', async (request, reply) => {
    const facts = request.facts;
    const length = reply.getHeader('content-length');
    request.log.info(
      {
        method: request.method,
        path: request.url,
        endpoint: facts?.endpoint,
        registry: facts?.registry,
        repository: facts?.repository,
        source: facts?.source,
        status: reply.statusCode,
        bytes: facts?.bytes ?? (request.method === 'HEAD' ? 0 : Number(length ?? 0)),
        aborted: !reply.raw.writableFinished,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request',
    );
  });
}
