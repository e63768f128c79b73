// Non-upgrade HTTP on routes with httpFallback.enabled (Socket.IO / SockJS long-polling). A request goes
// through the same steps as an upgrade: a HandshakeContext, the admission chain the composition root gives
// (address, origin and credential checks, the upstream TLS settings, health's veto of ejected, unhealthy or
// open-circuit endpoints, then affinity), the same endpoint pick (balancer.ts with ctx.pick) and the same
// attempt/result hooks, so a session that starts polling and upgrades later stays on one pod and a pod the
// upgrades stopped using is not polled either. Bodies stream both ways; upstream connections are kept alive per
// endpoint; hop-by-hop headers are dropped and X-Forwarded-* set as on the upgrade path; with upstream.protocol
// wss the request goes out over https with the route's CA bundle, server name and verification
// (upstreamTlsOptions, shared with the upgrade). The timeout is an idle timeout (no byte either way for
// httpFallback.timeoutSeconds), because a long-poll legitimately waits for its answer.
//
// For health a request counts like a handshake: from its send until its answer's head (ok), or until it fails
// (connect refused or timed out, TLS refused, reset or no answer in time). A bodiless request whose connect
// failed tries another endpoint, up to upstream.maxConnectAttempts, as upgrades do; a request with a body
// cannot be replayed and is answered with the failure.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Errors, WsgateError } from '../errors.ts';
import type { Endpoint, Route } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { FallbackTracing } from '../telemetry/tracing/fallback-tracing.ts';
import { pickEndpoint, type BalancerState, type Pick } from './balance/balancer.ts';
import { correlation, contextHeaders } from './handshake/forward-headers.ts';
import type { AdmissionCheck, HandshakeContext, HttpFallbackContext, ProxyHooks } from './hooks.ts';
import { hopByHop } from './handshake/refusal.ts';
import { upstreamTlsOptions, type UpstreamTls } from './upstream/dial.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';

export interface HttpFallbackOptions {
  readonly balancer: BalancerState;
  /** The connect deadline runs on it. */
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Agents of endpoints that leave the snapshot are closed. */
  readonly holder?: SnapshotHolder;
  /** Run in order on the request's context before an endpoint is chosen, as the upgrade's admission chain is
   *  (without connection budgets, which count WebSockets); the first error answers with its status. */
  readonly admission?: readonly AdmissionCheck[];
  /** Before each attempt (health: the breaker's pending count and half-open probe), as for upgrades. */
  readonly upstreamAttempt?: ProxyHooks['upstreamAttempt'];
  /** Each attempt's outcome per endpoint (passive ejection, breaker), as for upgrades. */
  readonly upstreamResult?: ProxyHooks['upstreamResult'];
  /** A server span per request; unset: tracing off, and none of its calls are made. */
  readonly tracing?: FallbackTracing;
}

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS']);

/** One fallback request on its way upstream. */
interface Exchange {
  readonly ctx: HandshakeContext<IncomingMessage>;
  readonly res: ServerResponse;
  readonly headers: string[];
  readonly path: string;
  readonly tls: UpstreamTls | undefined;
  readonly idleMs: number;
  readonly connectMs: number;
  readonly bodiless: boolean;
  readonly tried: Set<string>;
  /** Endpoints still to try when a connect fails. */
  attemptsLeft: number;
  last: WsgateError | undefined;
}

export class HttpFallback {
  readonly #o: HttpFallbackOptions;
  readonly #log: Logger;
  readonly #agents = new Map<string, http.Agent>();
  readonly #unsubscribe: () => void;

  constructor(o: HttpFallbackOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'http-fallback' });
    this.#unsubscribe = o.holder?.onSwap((next) => {
      for (const [key, agent] of this.#agents) {
        if (!next.endpoints.has(key.slice(key.indexOf('#') + 1))) {
          agent.destroy();
          this.#agents.delete(key);
        }
      }
    }) ?? (() => {});
  }

  /** Closes every kept-alive upstream connection. */
  close(): void {
    this.#unsubscribe();
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }

  handle(f: HttpFallbackContext): void {
    const ctx = fallbackContext(f);
    this.#o.tracing?.begin(ctx, f.res);
    this.#observe(ctx, f.res);
    this.#admit(ctx).then(
      (err) => {
        if (f.res.destroyed) return;
        if (err) return this.#fail(f.res, f.match.route, err);
        this.#proxy(ctx, f.res);
      },
      (err: unknown) => {
        this.#log.error({ err, route: f.match.route.key }, 'fallback admission failed unexpectedly');
        this.#fail(f.res, f.match.route, Errors.noEndpoint('internal error'));
      },
    );
  }

  async #admit(ctx: HandshakeContext<IncomingMessage>): Promise<WsgateError | undefined> {
    for (const check of this.#o.admission ?? []) {
      let err = check(ctx);
      if (err instanceof Promise) err = await err;
      if (err) return err;
    }
    return undefined;
  }

  #proxy(ctx: HandshakeContext<IncomingMessage>, res: ServerResponse): void {
    const { req } = ctx;
    const route = ctx.match.route;
    // The proxy hands over only requests of routes with httpFallback; any other is answered as it would be.
    if (!route.httpFallback) return this.#fail(res, route, Errors.upgradeRequired());
    // A kept-alive socket the upstream closed meanwhile fails before any byte is answered: a bodiless request
    // may go again (to the same endpoint after a stale socket, to another after a failed connect).
    const bodiless = !req.headers['content-length'] && !req.headers['transfer-encoding'];
    if (bodiless) req.resume();
    this.#next({
      ctx,
      res,
      headers: contextHeaders(ctx, false),
      path: ctx.forward.path ?? req.url ?? '/',
      // No TLS policy ran (a bare composition): wss still means verified TLS, against the system roots.
      tls: ctx.upstreamTls ?? (route.upstream.tls ? { rejectUnauthorized: true } : undefined),
      idleMs: route.httpFallback.timeoutMs,
      connectMs: route.upstream.connectTimeoutMs,
      bodiless,
      tried: new Set(),
      attemptsLeft: bodiless ? route.upstream.maxConnectAttempts : 1,
      last: undefined,
    });
  }

  /** The next endpoint, chosen as for an upgrade: health's veto and affinity through ctx.pick. */
  #next(x: Exchange): void {
    const { ctx } = x;
    const route = ctx.match.route;
    const pick = pickEndpoint(ctx.match.rule, route.balance.policy, this.#o.balancer, { ...ctx.pick, exclude: x.tried });
    if (pick instanceof WsgateError) return this.#fail(x.res, route, x.last ?? pick);
    x.tried.add(pick.endpoint.key);
    x.attemptsLeft--;
    this.#o.tracing?.attempt(ctx, pick);
    this.#o.upstreamAttempt?.(ctx, pick);
    const staleRetries = x.bodiless && idempotent.has(ctx.req.method ?? '') ? 1 : 0;
    this.#send(x, pick, staleRetries);
  }

  #send(x: Exchange, pick: Pick, staleRetries: number): void {
    const { ctx, res } = x;
    const { req } = ctx;
    const endpoint = pick.endpoint;
    const up = (x.tls ? https : http).request({
      host: endpoint.host,
      port: endpoint.port,
      method: req.method,
      path: x.path,
      headers: x.headers,
      setHost: false,
      agent: this.#agent(endpoint, x.tls),
      ...(x.tls ? upstreamTlsOptions(x.tls, endpoint) : {}),
    });
    let answered = false;
    let connected = false;
    let clientGone = false;
    let connectTimer: ClockTimer | undefined;
    const report = (ok: boolean, aborted = false) => this.#o.upstreamResult?.(endpoint, ok, { ctx, backend: pick.backend, aborted });
    up.on('socket', (s: Socket) => {
      if (!s.connecting) {
        connected = true;
        return;
      }
      connectTimer = this.#o.clock.setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT_CONNECT' })), x.connectMs);
      s.once(x.tls ? 'secureConnect' : 'connect', () => {
        connected = true;
        this.#o.clock.clearTimeout(connectTimer);
      });
    });
    up.setTimeout(x.idleMs, () => up.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT_IDLE' })));
    // The client left: stop the upstream exchange too (and its long-poll).
    const onClientGone = () => {
      if (res.writableFinished) return;
      clientGone = true;
      up.destroy();
    };
    res.once('close', onClientGone);
    up.on('error', (err: NodeJS.ErrnoException) => {
      this.#o.clock.clearTimeout(connectTimer);
      res.off('close', onClientGone);
      if (answered) return void res.destroy();
      // A client that left before the answer says nothing about the endpoint.
      if (clientGone || res.destroyed) return void report(false, true);
      // A stale kept-alive socket is not the endpoint's fault: the same attempt goes again on a fresh one.
      if (staleRetries > 0 && up.reusedSocket && err.code === 'ECONNRESET') return this.#send(x, pick, staleRetries - 1);
      report(false);
      const e =
        err.code === 'ETIMEDOUT_CONNECT' || err.code === 'ETIMEDOUT_IDLE'
          ? Errors.upstreamTimeout(`${endpoint.address}: ${err.code === 'ETIMEDOUT_IDLE' ? 'no answer in time' : 'connect timed out'}`)
          : Errors.upstreamRefused(`${endpoint.address}: ${err.code ?? err.message}`);
      // Nothing reached the upstream: another endpoint may take the request.
      if (!connected && x.attemptsLeft > 0) {
        x.last = e;
        return this.#next(x);
      }
      this.#fail(res, ctx.match.route, e);
    });
    up.on('response', (ur: IncomingMessage) => {
      answered = true;
      report(true);
      const out: string[] = [];
      const listed = new Set(String(ur.headers.connection ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const lk = ur.rawHeaders[i].toLowerCase();
        if (hopByHop.has(lk) || listed.has(lk)) continue;
        out.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
      }
      // What admission added for the client (affinity's Set-Cookie for the endpoint that answered).
      out.push(...ctx.responseHeaders);
      if (res.destroyed) return void up.destroy();
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, out);
      ur.pipe(res);
      ur.on('end', () => res.off('close', onClientGone));
      // An upstream that dies mid-body must not look like a complete answer to the client.
      ur.on('close', () => {
        if (!ur.complete) res.destroy();
      });
    });
    if (x.bodiless) up.end();
    else req.pipe(up);
  }

  #agent(endpoint: Endpoint, tls: UpstreamTls | undefined): http.Agent {
    const key = `${tls ? 'tls' : 'tcp'}#${endpoint.key}`;
    let a = this.#agents.get(key);
    if (!a) {
      // Free sockets time out before Node servers' default 5 s keep-alive, so a reused socket is rarely stale.
      // An https agent keeps sockets apart by their TLS options, so routes with different CAs never share one.
      const opts = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 64, timeout: 4000, scheduling: 'lifo' as const };
      a = tls ? new https.Agent(opts) : new http.Agent(opts);
      this.#agents.set(key, a);
    }
    return a;
  }

  /** One metric sample and one info line per request when its answer ends, whoever answered it: polling
   *  traffic (Socket.IO's "Session ID unknown" 400s among it) must be as visible as upgrades. */
  #observe(ctx: HandshakeContext<IncomingMessage>, res: ServerResponse): void {
    const started = performance.now();
    const { route } = ctx.match;
    res.once('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const code = res.headersSent ? statusLabel(res.statusCode) : 'none';
      const labels = { namespace: route.namespace, route: route.name };
      this.#o.metrics?.httpRequestsTotal.inc({ ...labels, code });
      this.#o.metrics?.httpRequestDuration.observe(labels, seconds);
      this.#log.info(
        { route: route.key, method: ctx.req.method, status: code, durationMs: Math.round(seconds * 1000), clientIp: ctx.clientIp, requestId: ctx.correlation.requestId },
        'fallback request',
      );
    });
  }

  #fail(res: ServerResponse, route: Route, err: WsgateError): void {
    this.#o.metrics?.rejectionsTotal.inc({ namespace: route.namespace, route: route.name, reason: err.reason });
    this.#log.debug({ route: route.key, status: err.httpStatus, reason: err.reason, detail: err.message }, 'fallback request failed');
    this.#o.tracing?.refused(res, err);
    if (res.headersSent) return void res.destroy();
    if (res.destroyed) return;
    res.writeHead(err.httpStatus, { 'wsgate-reason': err.reason, 'content-type': 'text/plain; charset=utf-8', ...err.headers });
    res.end(`${err.message}\n`);
  }
}

/** A status as a metric label: the registered codes as they are, anything else an upstream may send as its
 *  class ("2XX"), so an upstream cannot mint series. */
export function statusLabel(status: number): string {
  if (http.STATUS_CODES[status] !== undefined) return String(status);
  return status >= 100 && status <= 999 ? `${Math.floor(status / 100)}XX` : 'invalid';
}

/** The context a fallback request passes admission with: the same shape as an upgrade's, so every check,
 *  health's veto and affinity's choice apply to it unchanged. */
export function fallbackContext(f: HttpFallbackContext): HandshakeContext<IncomingMessage> {
  const socket = f.req.socket;
  return {
    req: f.req,
    socket,
    match: f.match,
    clientIp: f.clientIp,
    secure: 'encrypted' in socket && Boolean((socket as { encrypted?: boolean }).encrypted),
    correlation: correlation(f.req),
    forward: { drop: new Set(), extra: [], ...(f.path !== undefined ? { path: f.path } : {}) },
    responseHeaders: [],
    pick: {},
  };
}
