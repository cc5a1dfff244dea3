import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { describeError } from '../core/errors.js';
import { errorBody, toOciError } from './error-map.js';
import type { Services } from './services.js';

/** Checks the Authorization header of a `/metrics` request; rejects with the domain error of a refusal. */
export type MetricsCheck = (authorization: string | undefined, address: string) => Promise<void>;

/** Answers another path of the listener (the status page); resolves false, having written nothing, when it is not one of its own. */
export type ExtraPaths = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;

/**
 * `metrics.listen`: `/metrics` on a listener of its own (an internal port for Prometheus), plain
 * HTTP, GET and HEAD only, and the paths `extra` answers (the status page); every other path is 404.
 * Refusals (metrics.auth, status.allow) are OCI JSON like the main listener's.
 */
export async function startMetricsListener(
  address: { host: string; port: number },
  services: Pick<Services, 'metricsText'>,
  logger: FastifyBaseLogger,
  check: MetricsCheck | undefined,
  extra?: ExtraPaths,
): Promise<Server> {
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    const json = (status: number, body: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const notFound = (): void => json(404, errorBody({ code: 'NOT_FOUND', message: 'this listener (metrics.listen) serves only GET /metrics and the status page', detail: undefined }));
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound();
    if (path !== '/metrics') {
      if (extra === undefined) return notFound();
      void extra(req, res, path).then(
        (answered) => {
          if (!answered) notFound();
        },
        (err: unknown) => {
          const mapped = toOciError(err);
          if (mapped.code === 'UNKNOWN') logger.error({ err: describeError(err) }, 'status request failed');
          json(mapped.status, errorBody(mapped), mapped.headers);
        },
      );
      return;
    }
    void (async () => {
      if (check !== undefined) await check(req.headers.authorization, req.socket.remoteAddress ?? 'unknown');
      const { contentType, body } = await services.metricsText();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch((err: unknown) => {
      const mapped = toOciError(err);
      if (mapped.code === 'UNKNOWN') logger.error({ err: describeError(err) }, 'metrics request failed');
      json(mapped.status, errorBody(mapped), mapped.headers);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
