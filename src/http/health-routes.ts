import type { FastifyInstance } from 'fastify';

/** `/healthz` (the process answers) and `/readyz` (storage is writable). */
export function registerHealthRoutes(app: FastifyInstance): void {
  app.get('/healthz', async (_request, reply) => reply.header('content-type', 'application/json').send('{"status":"ok"}'));
  app.get('/readyz', async (_request, reply) => {
    const ready = await app.pullgate.ready();
    return reply
      .code(ready ? 200 : 503)
      .header('content-type', 'application/json')
      .send(JSON.stringify({ status: ready ? 'ok' : 'storage not writable' }));
  });
}
