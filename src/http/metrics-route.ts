import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Checks a `/metrics` request (metrics.auth: a client login); throws the refusal as a domain error. */
export type MetricsGuard = (request: FastifyRequest) => Promise<void>;

/** `/metrics`: Prometheus text exposition of pullgate's counters, behind `guard` when metrics.auth is set. */
export function registerMetricsRoute(app: FastifyInstance, guard?: MetricsGuard): void {
  app.get('/metrics', async (request, reply) => {
    if (guard !== undefined) await guard(request);
    const { contentType, body } = await app.pullgate.metricsText();
    return reply.header('content-type', contentType).send(body);
  });
}
