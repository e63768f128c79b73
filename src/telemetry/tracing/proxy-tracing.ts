// The proxy's spans. A traced WebSocket is one trace:
//   GET (server)                the handshake: admission, routing, the endpoint pick, the upstream handshake
//   ├─ GET (client)             one per connect attempt; its context is the traceparent the backend receives
//   └─ WebSocket ns/name        the connection, from the 101 to the close (internal): counts, close code, who
//                               closed, drain cause; events for drain started, heartbeat timeout, limit exceeded
// The proxy calls in at a handful of points of the handshake and at a connection's start and end; nothing here
// runs per message. An unsampled handshake still gets a (non-recording) span, because its ids make the
// traceparent sent upstream, but its connection gets no span at all.
// A connection may stay open for hours, so while it is open it holds only a small record (its parent's span
// context, its start time, events that happened); its span is made at the close with those times. An SDK span
// kept open instead would hold about 1.4 KB more per idle connection (BENCHMARKS.md, "Tracing").
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Socket } from 'node:net';
import { CloseCode, type WsgateError } from '../../errors.ts';
import type { Backend, Endpoint, Route } from '../../model/snapshot.ts';
import type { Pick } from '../../proxy/balance/balancer.ts';
import type { LiveConnection } from '../../proxy/connections.ts';
import type { UpgradeRequest } from '../../proxy/handshake/head.ts';
import type { HandshakeContext } from '../../proxy/hooks.ts';
import type { RelayEnd, RelaySide } from '../../proxy/relay/relay.ts';
import type { RouteMatch } from '../../proxy/router.ts';
import type { UpstreamResult } from '../../proxy/upstream/dial.ts';
import { traceparentOf } from './traceparent.ts';

/** Names of wsgate's own attributes (no semantic convention covers them). */
export const Attr = {
  route: 'wsgate.route',
  rule: 'wsgate.route.rule',
  backend: 'wsgate.backend',
  endpoint: 'wsgate.endpoint',
  affinity: 'wsgate.affinity',
  outcome: 'wsgate.outcome',
  requestId: 'wsgate.request_id',
  attempt: 'wsgate.upstream.attempt',
  messagesFromClient: 'wsgate.messages.from_client',
  messagesFromUpstream: 'wsgate.messages.from_upstream',
  bytesFromClient: 'wsgate.bytes.from_client',
  bytesFromUpstream: 'wsgate.bytes.from_upstream',
  closeCode: 'wsgate.close.code',
  closeReason: 'wsgate.close.reason',
  closeInitiator: 'wsgate.close.initiator',
  drainCause: 'wsgate.drain.cause',
  heartbeatSide: 'wsgate.heartbeat.side',
} as const;

export const SpanEvent = {
  drainStarted: 'drain started',
  heartbeatTimeout: 'heartbeat timeout',
  limitExceeded: 'limit exceeded',
} as const;

/** Why a connection was scheduled for a paced close: its endpoint is leaving, or this proxy is stopping. */
export type DrainCause = 'endpoint leaving' | 'proxy shutdown';

/** Called by the relay with the first close it records (any side), so events carry the moment of the decision. */
export type CloseObserver = (code: number, reason: string, initiator: RelaySide | 'proxy') => void;

interface Handshake {
  readonly span: Span;
  /** The span's context: the parent of the upstream attempts and of the connection. */
  readonly ctx: Context;
  readonly socket: Socket;
  attempts: number;
  upstream: Span | undefined;
  readonly onGone: () => void;
}

interface TimedEvent {
  readonly name: string;
  readonly attributes: Attributes;
  /** performance.now() when it happened. */
  readonly at: number;
}

/** An open traced connection: what its span will need at the close. */
interface Connection {
  readonly parent: SpanContext;
  /** performance.now() at the 101. */
  readonly start: number;
  readonly clientIp: string;
  readonly requestId: string;
  drainCause: DrainCause | undefined;
  events: TimedEvent[] | undefined;
}

const getter = {
  keys: (carrier: UpgradeRequest['headers']) => Object.keys(carrier),
  get: (carrier: UpgradeRequest['headers'], key: string) => carrier[key],
};

export class ProxyTracing {
  readonly #tracer: Tracer;
  readonly #propagator = new W3CTraceContextPropagator();
  readonly #handshakes = new WeakMap<Socket, Handshake>();
  readonly #connections = new WeakMap<LiveConnection, Connection>();

  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /** An upgrade request arrived: the server span starts, a child of the client's traceparent when it sent one. */
  begin(req: UpgradeRequest, socket: Socket, secure: boolean): void {
    const parent = parentOf(req, this.#propagator);
    const span = this.#tracer.startSpan('GET', { kind: SpanKind.SERVER, attributes: requestAttributes(req, socket, secure) }, parent);
    const h: Handshake = {
      span,
      ctx: trace.setSpan(parent, span),
      socket,
      attempts: 0,
      upstream: undefined,
      // The client left while the handshake was in flight (the proxy answers nobody then).
      onGone: () => this.#finish(h, { [Attr.outcome]: 'client_gone' }, undefined),
    };
    socket.once('close', h.onGone);
    this.#handshakes.set(socket, h);
  }

  /** The request matched a route and the context of the handshake exists. */
  routed(ctx: HandshakeContext): void {
    const h = this.#handshakes.get(ctx.socket);
    if (!h?.span.isRecording()) return;
    h.span.setAttributes({ ...routeAttributes(ctx.match), [ATTR_CLIENT_ADDRESS]: ctx.clientIp, [Attr.requestId]: ctx.correlation.requestId });
  }

  /** Before a connect attempt: its client span, and the traceparent sent upstream becomes that span's context. */
  upstreamStart(ctx: HandshakeContext, pick: Pick): void {
    const h = this.#handshakes.get(ctx.socket);
    if (!h) return;
    h.attempts++;
    const e = pick.endpoint;
    const span = this.#tracer.startSpan(
      'GET',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: 'GET',
          [ATTR_SERVER_ADDRESS]: e.host,
          [ATTR_SERVER_PORT]: e.port,
          [ATTR_NETWORK_PEER_ADDRESS]: e.host,
          [ATTR_NETWORK_PEER_PORT]: e.port,
          [ATTR_URL_FULL]: `${ctx.upstreamTls ? 'https' : 'http'}://${e.address}${ctx.forward.path ?? ctx.req.url ?? '/'}`,
          [Attr.backend]: pick.backend.id,
          [Attr.endpoint]: e.address,
          [Attr.attempt]: h.attempts,
        },
      },
      h.ctx,
    );
    h.upstream = span;
    ctx.correlation = { requestId: ctx.correlation.requestId, traceparent: traceparentOf(span.spanContext()) };
  }

  /** The attempt's outcome: 101, the upstream's refusal (its status), or a connect/handshake failure. */
  upstreamEnd(ctx: HandshakeContext, result: UpstreamResult): void {
    const h = this.#handshakes.get(ctx.socket);
    const span = h?.upstream;
    if (!h || !span) return;
    h.upstream = undefined;
    if (result.kind === 'failed') {
      span.setAttribute(ATTR_ERROR_TYPE, result.error.reason);
      span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.message });
    } else {
      const status = result.res.statusCode;
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      // A client span's 4xx and 5xx are errors (HTTP semantic conventions, "Status").
      if (status >= 400) {
        span.setAttribute(ATTR_ERROR_TYPE, String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  }

  /** The proxy refused the upgrade with err (its status and reason are what the client got). */
  refused(socket: Socket, err: WsgateError, match: RouteMatch | undefined): void {
    const h = this.#handshakes.get(socket);
    if (!h) return;
    const attributes: Attributes = { [ATTR_HTTP_RESPONSE_STATUS_CODE]: err.httpStatus, [ATTR_ERROR_TYPE]: err.reason, [Attr.outcome]: err.reason };
    if (match) Object.assign(attributes, routeAttributes(match));
    this.#finish(h, attributes, err.httpStatus >= 500 ? err.message : undefined);
  }

  /** The upstream answered without upgrading; the client got its response. */
  upstreamAnswered(socket: Socket, status: number): void {
    const h = this.#handshakes.get(socket);
    if (!h) return;
    const attributes: Attributes = { [ATTR_HTTP_RESPONSE_STATUS_CODE]: status, [Attr.outcome]: 'upstream_response' };
    if (status >= 400) attributes[ATTR_ERROR_TYPE] = String(status);
    this.#finish(h, attributes, status >= 500 ? `upstream answered ${status}` : undefined);
  }

  /** The 101 went out: the handshake span ends and the connection span starts (sampled handshakes only). Returns
   *  the relay's close observer for a traced connection. */
  established(ctx: HandshakeContext, conn: LiveConnection): CloseObserver | undefined {
    const h = this.#handshakes.get(ctx.socket);
    if (!h) return undefined;
    const recording = h.span.isRecording();
    const attributes: Attributes = { [ATTR_HTTP_RESPONSE_STATUS_CODE]: 101, [Attr.outcome]: 'upgraded' };
    if (recording) Object.assign(attributes, endpointAttributes(conn.endpoint, backendOf(ctx.match, conn.endpoint)));
    this.#finish(h, attributes, undefined);
    if (!recording) return undefined;
    const c: Connection = {
      parent: h.span.spanContext(),
      start: performance.now(),
      clientIp: ctx.clientIp,
      requestId: ctx.correlation.requestId,
      drainCause: undefined,
      events: undefined,
    };
    this.#connections.set(conn, c);
    return (code, reason, initiator) => this.#closing(c, code, reason, initiator);
  }

  /** wsgate answered the upgrade itself (a rule with `llm`): the handshake span ends with the 101. Returns its
   *  context, the parent of the socket's request spans, when it is sampled. */
  answered(ctx: HandshakeContext): SpanContext | undefined {
    const h = this.#handshakes.get(ctx.socket);
    if (!h) return undefined;
    const recording = h.span.isRecording();
    this.#finish(h, { [ATTR_HTTP_RESPONSE_STATUS_CODE]: 101, [Attr.outcome]: 'llm' }, undefined);
    return recording ? h.span.spanContext() : undefined;
  }

  /** The connection was scheduled for a paced close (1012). */
  draining(conn: LiveConnection, cause: DrainCause): void {
    const c = this.#connections.get(conn);
    if (!c || c.drainCause !== undefined) return;
    c.drainCause = cause;
    event(c, SpanEvent.drainStarted, { [Attr.drainCause]: cause });
  }

  ended(conn: LiveConnection, end: RelayEnd): void {
    const c = this.#connections.get(conn);
    if (!c) return;
    this.#connections.delete(conn);
    const s = end.stats;
    const attributes: Attributes = {
      [Attr.route]: routeName(conn.route),
      [Attr.endpoint]: conn.endpoint.address,
      [ATTR_CLIENT_ADDRESS]: c.clientIp,
      [Attr.requestId]: c.requestId,
      [Attr.messagesFromClient]: s.messagesFromClient,
      [Attr.messagesFromUpstream]: s.messagesFromUpstream,
      [Attr.bytesFromClient]: s.bytesFromClient,
      [Attr.bytesFromUpstream]: s.bytesFromUpstream,
      [Attr.closeCode]: end.code,
      [Attr.closeReason]: end.reason,
      [Attr.closeInitiator]: end.initiator,
    };
    if (c.drainCause !== undefined) attributes[Attr.drainCause] = c.drainCause;
    const span = this.#tracer.startSpan(
      `WebSocket ${conn.route.namespace}/${conn.route.name}`,
      { kind: SpanKind.INTERNAL, attributes, startTime: c.start },
      trace.setSpanContext(ROOT_CONTEXT, c.parent),
    );
    for (const e of c.events ?? []) span.addEvent(e.name, e.attributes, e.at);
    // An upstream that failed (1014) or the proxy's own failure (1011) is an error at the edge; a client that
    // vanished (1006) or any orderly close is how WebSockets end.
    if (end.code === CloseCode.UpstreamFailed || end.code === CloseCode.InternalError) span.setStatus({ code: SpanStatusCode.ERROR, message: end.reason });
    span.end();
  }

  #closing(c: Connection, code: number, reason: string, initiator: RelaySide | 'proxy'): void {
    if (initiator !== 'proxy') return;
    if (reason.endsWith('heartbeat timeout')) {
      event(c, SpanEvent.heartbeatTimeout, { [Attr.heartbeatSide]: reason.startsWith('upstream') ? 'upstream' : 'client', [Attr.closeCode]: code });
    } else if (code === CloseCode.MessageTooBig || (code === CloseCode.PolicyViolation && /^(client|upstream): /.test(reason))) {
      // The relay's limits (message size; a message check such as the rate limit) name the side that broke them.
      event(c, SpanEvent.limitExceeded, { [Attr.closeCode]: code, [Attr.closeReason]: reason });
    }
  }

  #finish(h: Handshake, attributes: Attributes, error: string | undefined): void {
    h.socket.off('close', h.onGone);
    this.#handshakes.delete(h.socket);
    // An attempt still open (the client left mid-attempt) ends with the handshake.
    h.upstream?.end();
    h.upstream = undefined;
    h.span.setAttributes(attributes);
    // Server spans: only 5xx are errors (HTTP semantic conventions, "Status"); a 4xx is the client's.
    if (error !== undefined) h.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    h.span.end();
  }
}

/** A request's server-span attributes (HTTP semantic conventions): what the client sent, and from where. */
export function requestAttributes(req: UpgradeRequest, socket: Socket, secure: boolean): Attributes {
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: req.method ?? 'GET',
    [ATTR_URL_SCHEME]: secure ? 'https' : 'http',
    [ATTR_URL_PATH]: pathOf(req.url),
    [ATTR_NETWORK_PROTOCOL_NAME]: 'http',
    [ATTR_NETWORK_PROTOCOL_VERSION]: `${req.httpVersionMajor}.${req.httpVersionMinor}`,
    [ATTR_NETWORK_PEER_ADDRESS]: socket.remoteAddress ?? '',
    [ATTR_NETWORK_PEER_PORT]: socket.remotePort ?? 0,
    ...hostAttributes(req.headers.host ?? ''),
  };
  const ua = req.headers['user-agent'];
  if (typeof ua === 'string') attributes[ATTR_USER_AGENT_ORIGINAL] = ua;
  return attributes;
}

/** The client's trace context (W3C traceparent), or none. */
export function parentOf(req: UpgradeRequest, propagator: W3CTraceContextPropagator): Context {
  return propagator.extract(ROOT_CONTEXT, req.headers, getter);
}

function event(c: Connection, name: string, attributes: Attributes): void {
  (c.events ??= []).push({ name, attributes, at: performance.now() });
}

function routeName(r: Route): string {
  return `${r.namespace}/${r.name}`;
}

export function routeAttributes(m: RouteMatch): Attributes {
  return { [Attr.route]: routeName(m.route), [Attr.rule]: m.rule.index, [Attr.affinity]: m.route.affinity.type };
}

export function endpointAttributes(e: Endpoint, b: Backend | undefined): Attributes {
  return { [Attr.endpoint]: e.address, ...(b ? { [Attr.backend]: b.id } : {}) };
}

function backendOf(m: RouteMatch, e: Endpoint): Backend | undefined {
  return m.rule.backends.find((b) => b.endpoints.includes(e));
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  // The query is left out: it may carry a credential (access_token, api keys).
  return q < 0 ? u : u.slice(0, q);
}

function hostAttributes(host: string): Attributes {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  if (!m || !m[1]) return {};
  return { [ATTR_SERVER_ADDRESS]: m[1].replace(/^\[|\]$/g, ''), ...(m[2] ? { [ATTR_SERVER_PORT]: Number(m[2]) } : {}) };
}
