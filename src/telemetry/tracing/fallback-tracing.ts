// The HTTP fallback's span: a long-polling request (Socket.IO, SockJS) is one server span named by its method,
// a child of the client's traceparent when it sent one, with the handshake's attributes where they apply
// (request, route, client, the endpoint that was tried last and how many were) and the status the client got.
// The traceparent sent upstream is this span's context, so the backend's spans hang under it. It ends when the
// response does: for a long-poll that is when the backend answered, however long it held the request.
import { SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_RESPONSE_STATUS_CODE } from '@opentelemetry/semantic-conventions';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WsgateError } from '../../errors.ts';
import type { Pick } from '../../proxy/balance/balancer.ts';
import type { HandshakeContext } from '../../proxy/hooks.ts';
import { Attr, endpointAttributes, parentOf, requestAttributes, routeAttributes } from './proxy-tracing.ts';
import { traceparentOf } from './traceparent.ts';

type FallbackContext = HandshakeContext<IncomingMessage>;

interface Request {
  readonly span: Span;
  attempts: number;
  /** wsgate answered the request itself, with this error's status. */
  refusal: WsgateError | undefined;
}

export class FallbackTracing {
  readonly #tracer: Tracer;
  readonly #propagator = new W3CTraceContextPropagator();
  readonly #requests = new WeakMap<FallbackContext, Request>();
  readonly #responses = new WeakMap<ServerResponse, Request>();

  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /** The request arrived (before admission): its span starts, and its context becomes the upstream traceparent. */
  begin(ctx: FallbackContext, res: ServerResponse): void {
    const attributes = { ...requestAttributes(ctx.req, ctx.socket, ctx.secure), ...routeAttributes(ctx.match) };
    const span = this.#tracer.startSpan(ctx.req.method ?? 'GET', { kind: SpanKind.SERVER, attributes }, parentOf(ctx.req, this.#propagator));
    ctx.correlation = { requestId: ctx.correlation.requestId, traceparent: traceparentOf(span.spanContext()) };
    if (!span.isRecording()) return;
    const r: Request = { span, attempts: 0, refusal: undefined };
    this.#requests.set(ctx, r);
    this.#responses.set(res, r);
    res.once('close', () => this.#end(ctx, r, res));
  }

  /** An endpoint was picked for the request (again, when a connect failed). */
  attempt(ctx: FallbackContext, pick: Pick): void {
    const r = this.#requests.get(ctx);
    if (!r) return;
    r.attempts++;
    r.span.setAttributes({ ...endpointAttributes(pick.endpoint, pick.backend), [Attr.attempt]: r.attempts });
  }

  /** wsgate answers with err (admission refused it, no endpoint, the upstream failed or timed out). */
  refused(res: ServerResponse, err: WsgateError): void {
    const r = this.#responses.get(res);
    if (r) r.refusal ??= err;
  }

  #end(ctx: FallbackContext, r: Request, res: ServerResponse): void {
    this.#requests.delete(ctx);
    this.#responses.delete(res);
    // The client address as admission settled it (a trusted proxy's X-Forwarded-For).
    const attributes: Attributes = { [ATTR_CLIENT_ADDRESS]: ctx.clientIp, [Attr.requestId]: ctx.correlation.requestId };
    let error: string | undefined;
    if (!res.headersSent) {
      attributes[Attr.outcome] = 'client_gone';
    } else {
      const status = res.statusCode;
      // wsgate's own refusals carry their reason; any other answer is the upstream's.
      const reason = r.refusal?.reason;
      attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
      attributes[Attr.outcome] = reason ?? 'upstream_response';
      if (status >= 400) attributes[ATTR_ERROR_TYPE] = reason ?? String(status);
      // Server spans: only 5xx are errors (HTTP semantic conventions, "Status"); a 4xx is the client's.
      if (status >= 500) error = reason ?? `upstream answered ${status}`;
      // An answer cut off mid-body (the upstream died) did not reach the client whole.
      if (!res.writableFinished) attributes[Attr.outcome] = 'incomplete';
    }
    r.span.setAttributes(attributes);
    if (error !== undefined) r.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    r.span.end();
  }
}
