import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Returns a function that creates, on first call, an AbortSignal firing when the client goes away
 * before its response has been sent in full. Lazy because most answers come from the cache and
 * never need one (an AbortController per request is measurable at 10k req/s).
 */
export function clientSignal(request: FastifyRequest, reply: FastifyReply): () => AbortSignal {
  let signal: AbortSignal | undefined;
  return () => {
    if (signal) return signal;
    const controller = new AbortController();
    signal = controller.signal;
    const onClose = (): void => {
      if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
    };
    reply.raw.once('close', onClose);
    request.raw.once('aborted', onClose);
    return signal;
  };
}
