import type { FastifyError, FastifyInstance } from 'fastify';
import { ERROR_CODES, errorBody, toOciError, type ErrorCode, type OciError } from './error-map.js';

/** Fastify's own errors (bad framing, unsupported media type, body too large) carry a 4xx statusCode. */
function isFastifyClientError(err: unknown): err is FastifyError {
  return err instanceof Error && 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
}

function fromFastify(err: FastifyError): OciError {
  const status = err.statusCode ?? 400;
  const code: ErrorCode = status === 404 ? 'NOT_FOUND' : status === 405 ? 'UNSUPPORTED' : status === 429 ? 'TOOMANYREQUESTS' : 'NAME_INVALID';
  return { status, code, message: err.message, detail: undefined, headers: {} };
}

/** Registers the one error handler and the not-found handler: every failure leaves as OCI JSON. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request, reply) => {
    const mapped = isFastifyClientError(err) ? fromFastify(err) : toOciError(err);
    if (mapped.code === 'UNKNOWN') request.log.error({ err }, 'request failed');
    else request.log.warn({ code: mapped.code, error: mapped.message }, 'request refused');
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    void reply
      .code(mapped.status)
      .headers(mapped.headers)
      .header('content-type', 'application/json; charset=utf-8')
      .send(request.method === 'HEAD' ? undefined : errorBody(mapped));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(ERROR_CODES.NOT_FOUND)
      .header('content-type', 'application/json; charset=utf-8')
      .send(errorBody({ code: 'NOT_FOUND', message: `no such endpoint: ${request.method} ${request.url.split('?')[0] ?? ''}`, detail: undefined }));
  });
}
