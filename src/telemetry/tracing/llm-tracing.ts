// Spans of the LLM bridge, following the OpenTelemetry GenAI semantic conventions
// (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/). A traced wsgate.llm.v1 socket is one trace:
//   GET (server)                      the handshake, ended at the 101 wsgate answers itself (outcome "llm")
//   └─ chat {requested model} (server) one per request message: the logical operation, all attempts included
//      ├─ chat {model} (client)        one per provider attempt: the GenAI inference span of that HTTP call
//      └─ chat {model} (client)        the fallback's next attempt, when the first failed before any text
// Fallback attempts are child spans rather than events on the request: each is a separate HTTP call to another
// service with its own duration, status and error, which is what a client span carries and what backends draw
// as a dependency; the request span stays whole, as the conventions ask of a span whose operation was retried.
// Time to first token is the attribute gen_ai.response.time_to_first_chunk (seconds), on the request (from its
// message) and on the attempt that produced it (from its call), measured on the session's clock.
// A message refused before any provider was asked (limits, draining, a bad message) is one server span of its
// own with the error the client got. The socket itself gets a span like a relayed connection's
// (proxy-tracing.ts): made at its close from a small record, with its request counts and close code.
// gen_ai.response.model is the model the provider reports (it may name a dated version of the one asked for).
// Prompt and completion text never reach this file: the session's observer is not given them.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@opentelemetry/semantic-conventions';
import { CloseCode, LlmErrorCode } from '../../errors.ts';
import type { AttemptOutcome } from '../../llm/attempt.ts';
import type { LlmRefusal, LlmRequestEnd, LlmRequestObserver, LlmSessionObserver, LlmSocketEnd } from '../../llm/observer.ts';
import type { ClientRequest } from '../../llm/protocol.ts';
import type { LlmProvider, WireFormat } from '../../llm/route.ts';
import type { HandshakeContext } from '../../proxy/hooks.ts';
import { Attr, type ProxyTracing } from './proxy-tracing.ts';

// The GenAI attributes are still in development and live only in the package's unstable "incubating" entry
// point, which may change in any minor release; as @opentelemetry/semantic-conventions' README advises for
// those, the names are copied here.
export const GenAi = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  requestMaxTokens: 'gen_ai.request.max_tokens',
  requestTemperature: 'gen_ai.request.temperature',
  responseModel: 'gen_ai.response.model',
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  responseTimeToFirstChunk: 'gen_ai.response.time_to_first_chunk',
  usageInputTokens: 'gen_ai.usage.input_tokens',
  usageOutputTokens: 'gen_ai.usage.output_tokens',
} as const;

/** wsgate's own LLM attributes. */
export const LlmAttr = {
  requestId: 'wsgate.llm.request_id',
  provider: 'wsgate.llm.provider',
  attempt: 'wsgate.llm.attempt',
  attempts: 'wsgate.llm.attempts',
  outcome: 'wsgate.llm.outcome',
  timeout: 'wsgate.llm.timeout',
  /** On the socket's span: requests started, and messages refused before they started. */
  requests: 'wsgate.llm.requests',
  refused: 'wsgate.llm.refused',
} as const;

/** Refusals that are wsgate's side failing (it is going away), an error on the span as a 5xx or gRPC's UNAVAILABLE
 *  is on a server span; the others (a bad message, a limit, an unknown model) are the client's, which server
 *  spans leave unset with error.type (https://opentelemetry.io/docs/specs/semconv/rpc/grpc/, "Status"). */
const serverSideRefusals: ReadonlySet<string> = new Set([LlmErrorCode.draining]);

/** gen_ai.provider.name is the telemetry flavour of the wire format spoken (the conventions' well-known values);
 *  which configured provider it was is wsgate.llm.provider. */
const providerNames: Readonly<Record<WireFormat, string>> = {
  'openai-chat': 'openai',
  'anthropic-messages': 'anthropic',
};

export class LlmTracing {
  readonly #tracer: Tracer;
  readonly #proxy: ProxyTracing;

  constructor(tracer: Tracer, proxy: ProxyTracing) {
    this.#tracer = tracer;
    this.#proxy = proxy;
  }

  /** The gateway's hook: the upgrade was answered. An unsampled socket gets no observer, so its requests cost
   *  nothing here. */
  readonly observe = (ctx: HandshakeContext): LlmSessionObserver | undefined => {
    const parent = this.#proxy.answered(ctx);
    const route = ctx.match.rule.llm;
    if (!parent || !route) return undefined;
    const pctx = trace.setSpanContext(ROOT_CONTEXT, parent);
    const routeName = `${route.namespace}/${route.name}`;
    // performance.now() as the relayed connection's span takes it: span times are the SDK's, not the session's.
    const opened = performance.now();
    const tracer = this.#tracer;
    return {
      request: (req, at) => new RequestTrace(tracer, pctx, routeName, req, at),
      refused: (r) => refusedSpan(tracer, pctx, routeName, r),
      closed: (e) => socketSpan(tracer, pctx, routeName, ctx.clientIp, opened, e),
    };
  };
}

function refusedSpan(tracer: Tracer, parent: Context, route: string, r: LlmRefusal): void {
  const attributes: Attributes = { [GenAi.operationName]: 'chat', [Attr.route]: route, [ATTR_ERROR_TYPE]: r.code, [LlmAttr.outcome]: r.code };
  if (r.model !== undefined) attributes[GenAi.requestModel] = r.model;
  if (r.id !== undefined) attributes[LlmAttr.requestId] = r.id;
  const span = tracer.startSpan(r.model !== undefined ? `chat ${r.model}` : 'chat', { kind: SpanKind.SERVER, attributes }, parent);
  if (serverSideRefusals.has(r.code)) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

function socketSpan(tracer: Tracer, parent: Context, route: string, clientIp: string, opened: number, e: LlmSocketEnd): void {
  const attributes: Attributes = {
    [Attr.route]: route,
    [ATTR_CLIENT_ADDRESS]: clientIp,
    [LlmAttr.requests]: e.requests,
    [LlmAttr.refused]: e.refused,
    [Attr.closeCode]: e.code,
    [Attr.closeReason]: e.reason,
    [Attr.closeInitiator]: e.initiator,
  };
  if (e.drained) attributes[Attr.drainCause] = 'proxy shutdown';
  const span = tracer.startSpan(`WebSocket ${route}`, { kind: SpanKind.INTERNAL, attributes, startTime: opened }, parent);
  // As for relayed connections: only wsgate's own failure (1011) is an error; every other close is how sockets end.
  if (e.code === CloseCode.InternalError) span.setStatus({ code: SpanStatusCode.ERROR, message: e.reason });
  span.end();
}

class RequestTrace implements LlmRequestObserver {
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #ctx: Context;
  readonly #started: number;
  #attempts = 0;
  #attempt: Span | undefined;
  #attemptAt = 0;
  #provider: LlmProvider | undefined;

  constructor(tracer: Tracer, parent: Context, route: string, req: Pick<ClientRequest, 'id' | 'model' | 'params'>, at: number) {
    this.#tracer = tracer;
    this.#started = at;
    const attributes: Attributes = {
      [GenAi.operationName]: 'chat',
      [GenAi.requestModel]: req.model,
      [GenAi.requestMaxTokens]: req.params.maxTokens,
      [Attr.route]: route,
      [LlmAttr.requestId]: req.id,
    };
    if (req.params.temperature !== undefined) attributes[GenAi.requestTemperature] = req.params.temperature;
    this.#span = tracer.startSpan(`chat ${req.model}`, { kind: SpanKind.SERVER, attributes }, parent);
    this.#ctx = trace.setSpan(parent, this.#span);
  }

  attemptStart(provider: LlmProvider, model: string, at: number): void {
    this.#attempts++;
    this.#provider = provider;
    this.#attemptAt = at;
    this.#attempt = this.#tracer.startSpan(
      `chat ${model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [GenAi.operationName]: 'chat',
          [GenAi.providerName]: providerNames[provider.format],
          [GenAi.requestModel]: model,
          ...serverOf(provider.baseUrl),
          [LlmAttr.provider]: provider.name,
          [LlmAttr.attempt]: this.#attempts,
        },
      },
      this.#ctx,
    );
  }

  firstToken(at: number): void {
    this.#span.setAttribute(GenAi.responseTimeToFirstChunk, (at - this.#started) / 1000);
    this.#attempt?.setAttribute(GenAi.responseTimeToFirstChunk, (at - this.#attemptAt) / 1000);
  }

  attemptEnd(o: AttemptOutcome): void {
    const span = this.#attempt;
    if (!span) return;
    this.#attempt = undefined;
    span.setAttributes({ [GenAi.usageInputTokens]: o.usage.inputTokens, [GenAi.usageOutputTokens]: o.usage.outputTokens });
    if (o.result === 'done') {
      span.setAttributes({ [GenAi.responseFinishReasons]: [o.finishReason], [LlmAttr.outcome]: 'ok' });
      if (o.responseModel !== undefined) span.setAttribute(GenAi.responseModel, o.responseModel);
    } else if (o.result === 'aborted') {
      // The client cancelled or left: wsgate stopped the call on its behalf, not a failure of the provider.
      span.setAttribute(LlmAttr.outcome, 'aborted');
    } else {
      // error.type: the provider's HTTP status, else which way the call failed (connect, timeout, stream).
      const errorType = o.kind === 'status' ? o.detail : o.kind;
      span.setAttributes({ [ATTR_ERROR_TYPE]: errorType, [LlmAttr.outcome]: 'failed' });
      if (o.kind === 'status') span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, Number(o.detail));
      if (o.kind === 'timeout') span.setAttribute(LlmAttr.timeout, o.detail);
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${o.kind} ${o.detail}` });
    }
    span.end();
  }

  end(e: LlmRequestEnd): void {
    const attributes: Attributes = {
      [GenAi.usageInputTokens]: e.usage.inputTokens,
      [GenAi.usageOutputTokens]: e.usage.outputTokens,
      [LlmAttr.provider]: e.provider,
      [LlmAttr.attempts]: this.#attempts,
      [LlmAttr.outcome]: e.outcome,
    };
    if (this.#provider) attributes[GenAi.providerName] = providerNames[this.#provider.format];
    if (e.finishReason !== undefined) attributes[GenAi.responseFinishReasons] = [e.finishReason];
    if (e.responseModel !== undefined) attributes[GenAi.responseModel] = e.responseModel;
    this.#span.setAttributes(attributes);
    // Failed attempts a fallback recovered from are recorded on their own spans only: an operation that
    // completed is not an error (https://opentelemetry.io/docs/specs/semconv/general/recording-errors/). A
    // cancel, or a client that left, is the caller's choice, left unset as server spans leave a caller's
    // abandonment (gRPC CANCELLED on server spans: https://opentelemetry.io/docs/specs/semconv/rpc/grpc/).
    if (e.outcome !== 'ok' && e.outcome !== 'cancelled' && e.outcome !== 'client_gone') {
      this.#span.setAttribute(ATTR_ERROR_TYPE, e.outcome);
      this.#span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.#span.end();
  }
}

function serverOf(baseUrl: string): Attributes {
  const u = new URL(baseUrl);
  const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { [ATTR_SERVER_ADDRESS]: u.hostname.replace(/^\[|\]$/g, ''), [ATTR_SERVER_PORT]: port };
}
