import type { FastifyInstance } from 'fastify';

/** `/metrics`: Prometheus text exposition of pullgate's counters. */
export function registerMetricsRoute(app: FastifyInstance): void {
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await app.pullgate.metricsText();
    return reply.header('content-type', contentType).send(body);
  });
}
