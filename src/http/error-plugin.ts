import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UpstreamDenied } from '../core/errors.js';
import { ERROR_CODES, FAILURE_LOG_MESSAGES, errorBody, failureKind, toOciError, type ErrorCode, type OciError } from './error-map.js';

/** Fastify's own errors (bad framing, unsupported media type, body too large) carry a 4xx statusCode. */
function isFastifyClientError(err: unknown): err is FastifyError {
  return err instanceof Error && 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500;
}

/** The OCI code for one of Fastify's own 4xx errors. */
function fastifyCode(err: FastifyError, status: number): ErrorCode {
  if (err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH') return 'NAME_INVALID';
  if (status === 404) return 'NOT_FOUND';
  if (status === 413) return 'SIZE_INVALID';
  if (status === 429) return 'TOOMANYREQUESTS';
  return 'UNSUPPORTED'; // 405, 415 and the content-type parsers' 400s
}

function fromFastify(err: FastifyError): OciError {
  const status = err.statusCode ?? 400;
  return { status, code: fastifyCode(err, status), message: err.message, detail: undefined, headers: {} };
}

/**
 * Fastify's `frameworkErrors`: a URL that is not valid percent-encoding (`/v2/%zz/…`) or a path
 * parameter over maxParamLength is answered as OCI JSON, not with Fastify's own body.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const mapped = fromFastify(err);
  request.log.warn({ code: mapped.code, error: mapped.message }, FAILURE_LOG_MESSAGES.invalid);
  void reply
    .code(mapped.status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(request.method === 'HEAD' ? undefined : errorBody(mapped));
}

/** Registers the one error handler and the not-found handler: every failure leaves as OCI JSON. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request, reply) => {
    const fastify = isFastifyClientError(err);
    const mapped = fastify ? fromFastify(err) : toOciError(err);
    // A refusal (access, login, limits), a malformed request and an upstream outage each say which they are.
    const kind = fastify ? 'invalid' : failureKind(err);
    if (mapped.code === 'UNKNOWN') request.log.error({ err }, FAILURE_LOG_MESSAGES.internal);
    // The credential's full source (account, file) is for the operator's log; the client's body names its kind only.
    else request.log.warn({ code: mapped.code, error: mapped.message, ...(err instanceof UpstreamDenied && err.source ? { credential: err.source } : {}) }, FAILURE_LOG_MESSAGES[kind]);
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
