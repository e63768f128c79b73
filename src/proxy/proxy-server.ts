// The data plane: accepts upgrades, matches a route from the Snapshot read once at the handshake, forwards the
// handshake to an endpoint, then hands both sockets to the relay. It never imports the sources or the builder.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { CloseCode, Errors, WsgateError } from '../errors.ts';
import type { Endpoint, EndpointState, Route, Snapshot } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ProxyTracing } from '../telemetry/tracing/proxy-tracing.ts';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.ts';
import { TimerWheel } from '../util/timer-wheel.ts';
import { pickEndpoint, type BalancerState, type Pick, type PickOptions } from './balance/balancer.ts';
import type { ConnectionRegistry, LiveConnection } from './connections.ts';
import { DrainScheduler } from './drain.ts';
import { correlation, contextHeaders, socketAddress, switchingProtocols, TraceIds, type Correlation } from './handshake/forward-headers.ts';
import { checkUpgrade, hasToken } from './handshake/checks.ts';
import type { ProxyHooks, HandshakeContext } from './hooks.ts';
import { negotiatedDeflate } from './relay/deflate-params.ts';
import { Relay, type RelayEnd } from './relay/relay.ts';
import { rejectUpgrade, relayUpstreamResponse } from './handshake/refusal.ts';
import { normalizeTarget } from './handshake/request-path.ts';
import { matchRoute, type RouteMatch } from './router.ts';
import { openUpstream, type UpstreamResult } from './upstream/dial.ts';
import { deadlineCheckMs, UpgradeFront } from './handshake/front.ts';
import type { UpgradeRequest } from './handshake/head.ts';

export interface ProxyOptions {
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxHandshakesInFlight: number;
  /** Client connections open at once (every listener) before new ones get 503 overloaded; unset: no cap. */
  readonly maxConnections?: number;
  /** Close handshake: how long to wait for the peer's close frame before ending TCP. */
  readonly closeTimeoutMs: number;
  readonly hooks?: ProxyHooks;
  /** Open connections per endpoint (least-connections, affinity's bounded load, health's maxConnections):
   *  built by the composition root and shared with those readers, so none reaches into the proxy. */
  readonly balancer: BalancerState;
  /** Every open relayed connection (drain, shutdown); built by the composition root, which reads its size. */
  readonly connections: ConnectionRegistry;
  /** The process's clock: paced drain closes, and the wheel's time when no wheel is given. */
  readonly clock?: Clock;
  /** The drain's shuffle and jitter (Math.random); tests seed it to check a schedule. */
  readonly random?: () => number;
  /** The process's one timer wheel (close deadlines, heartbeats, idle timeouts), on the same clock; main shares it. */
  readonly wheel?: TimerWheel;
  /** Spans for handshakes and connections; unset: tracing off, and none of its calls are made. */
  readonly tracing?: ProxyTracing;
}

type Phase = 'serving' | 'propagating' | 'refusing';

let nextConnId = 1;

export class ProxyServer {
  readonly server: http.Server;
  private readonly connections: ConnectionRegistry;
  private readonly balancer: BalancerState;
  readonly #o: ProxyOptions;
  readonly #log: Logger;
  readonly #hooks: ProxyHooks;
  readonly #wheel: TimerWheel;
  readonly #clock: Clock;
  readonly #drain: DrainScheduler<LiveConnection>;
  readonly #unsubscribe: () => void;
  readonly #extra: http.Server[] = [];
  readonly #traceIds = new TraceIds();
  /** One per listener: plain upgrades skip Node's HTTP parser; the server gets every other request. */
  readonly #fronts: UpgradeFront[] = [];
  #inFlight = 0;
  /** Client sockets open on every listener, against maxConnections. */
  #clients = 0;
  #phase: Phase = 'serving';
  /** `route key|endpoint key` of open connections whose endpoint is Draining (terminating): when it stops
   *  serving or leaves, its process is stopping, so the connections still there close at once. */
  #terminating = new Set<string>();

  constructor(o: ProxyOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'proxy' });
    this.#hooks = o.hooks ?? {};
    this.connections = o.connections;
    this.balancer = o.balancer;
    const clock = (this.#clock = o.clock ?? systemClock());
    this.#wheel = o.wheel ?? new TimerWheel({ clock });
    this.#drain = new DrainScheduler<LiveConnection>({
      clock,
      random: o.random ?? Math.random,
      stillLeaving: (c) => !c.ended && (this.#phase !== 'serving' || leaving(stateFor(o.holder.current(), c))),
      // The draining gauge is settled when the connection ends (#onEnd), whoever ended it.
      onClosed: (c) => o.metrics.drainClosesTotal.inc(labels(c.route)),
      // Ended on its own (its gauge was settled then), or its endpoint came back before its turn.
      onSkipped: (c) => {
        if (!c.ended) o.metrics.connectionsDraining.dec(labels(c.route));
      },
    });
    this.server = http.createServer({
      maxHeaderSize: o.maxHeaderBytes,
      headersTimeout: o.handshakeTimeoutMs,
      requestTimeout: o.handshakeTimeoutMs,
      // A missing Host is answered by checkHost/the router (400 bad_host, 404) with wsgate-reason, not by Node.
      requireHostHeader: false,
      // Node checks the two timeouts above only this often (30 s by default): slowloris gets its 408 on time.
      connectionsCheckingInterval: deadlineCheckMs(o.handshakeTimeoutMs),
      keepAliveTimeout: 5000,
    });
    this.attach(this.server);
    this.#unsubscribe = o.holder.onSwap((next) => this.#onSwap(next));
  }

  /** Serves another listener (the TLS one) with the same handlers, table and connections. */
  attach(server: http.Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket as Socket, head));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
    if (server !== this.server) this.#extra.push(server);
    this.#fronts.push(
      new UpgradeFront(server, {
        event: server instanceof tls.Server ? 'secureConnection' : 'connection',
        clock: this.#clock,
        handshakeTimeoutMs: this.#o.handshakeTimeoutMs,
        maxHeaderBytes: this.#o.maxHeaderBytes,
        upgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
        timedOut: (socket) => this.#refuseEarly(Errors.handshakeTimeout(), socket),
        cutShort: (socket) => this.#refuseEarly(Errors.badHandshake('malformed request: HPE_INVALID_EOF_STATE'), socket),
        onError: destroyOnError,
        ...(this.#o.maxConnections !== undefined ? { admit: (socket) => this.#admit(socket), shed: (socket) => this.#shed(socket) } : {}),
      }),
    );
  }

  #admit(socket: Socket): boolean {
    if (this.#clients >= this.#o.maxConnections!) return false;
    this.#clients++;
    socket.once('close', () => this.#clients--);
    return true;
  }

  /** Over --max-connections: a 503 before the descriptors run out. What the client sent is read and dropped, so
   *  closing the socket does not reset the connection before the answer is read. */
  #shed(socket: Socket): void {
    socket.resume();
    this.#refuseEarly(Errors.overloaded('connection limit reached'), socket);
  }

  /** SIGTERM, step 1: new upgrades are still accepted (endpoint propagation) while readiness fails. */
  beginShutdown(): void {
    if (this.#phase === 'serving') this.#phase = 'propagating';
  }

  /** SIGTERM, step 2: refuse new upgrades with 503, close open connections with 1012 paced over drainMs, then
   *  close whatever is left. Resolves when every connection is gone. */
  async drainAll(drainMs: number): Promise<void> {
    this.#phase = 'refusing';
    // The listeners stay open until close(): a late client gets a clear 503, not a refused connection.
    const open = this.connections.all();
    for (const c of open) {
      if (c.draining) continue;
      this.#o.metrics.connectionsDraining.inc(labels(c.route));
      this.#o.tracing?.draining(c, 'proxy shutdown');
    }
    // Connections already draining over a longer backend window are pulled into this one.
    this.#drain.schedule(open, drainMs, CloseCode.ServiceRestart, 'proxy restarting', { within: true });
    await this.#whenEmpty(drainMs + this.#o.closeTimeoutMs + 1000);
  }

  /** Immediate close of everything (tests, a second signal). */
  async close(): Promise<void> {
    this.#phase = 'refusing';
    this.#unsubscribe();
    this.#drain.cancelAll();
    this.#closeListeners();
    for (const f of this.#fronts) f.close();
    for (const c of this.connections.all()) c.close(CloseCode.GoingAway, 'proxy going away');
    await this.#whenEmpty(this.#o.closeTimeoutMs);
    for (const srv of [this.server, ...this.#extra]) srv.closeAllConnections();
    this.#wheel.stop();
  }

  #closeListeners(): void {
    for (const srv of [this.server, ...this.#extra]) if (srv.listening) srv.close();
  }

  get accepting(): boolean {
    return this.#phase !== 'refusing';
  }

  /** Waits for the registry to empty; past maxMs, closes what is left (flushing any paced drain) and returns. */
  async #whenEmpty(maxMs: number): Promise<void> {
    let timer: ClockTimer | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = this.#clock.setTimeout(() => resolve('late'), maxMs)));
    const outcome = await Promise.race([this.connections.whenEmpty(), deadline]);
    this.#clock.clearTimeout(timer);
    if (outcome !== 'late') return;
    this.#drain.flush();
    for (const c of this.connections.all()) c.close(CloseCode.GoingAway, 'proxy going away');
  }

  #onSwap(next: Snapshot): void {
    // A connection stays while its endpoint is Active or NotReady among its route's endpoints: an endpoint that
    // another route still uses (static addresses are shared by key) does not keep a deleted route's connections.
    // Only this connection's route and endpoint decide: a swap never touches any other connection.
    const cache = new Map<string, ReadonlyMap<string, EndpointState>>();
    const terminating = new Set<string>();
    for (const key of [...this.connections.endpointKeys()]) {
      const paced: LiveConnection[] = [];
      const now: LiveConnection[] = [];
      for (const c of this.connections.onEndpoint(key)) {
        const state = stateFor(next, c, cache);
        if (state === 'Draining') terminating.add(pairKey(c));
        if (!leaving(state)) continue;
        if (state === undefined && this.#terminating.has(pairKey(c))) now.push(c);
        else if (!c.draining) paced.push(c);
      }
      if (paced.length > 0) this.#drainLeaving(key, paced, next);
      if (now.length > 0) this.#closeNow(key, now, next);
    }
    this.#terminating = terminating;
  }

  /** The endpoint stopped serving or left after it began terminating: its process is going away, so what the
   *  paced drain has not closed yet closes now, with 1012 while the sockets are alive. */
  #closeNow(key: string, conns: readonly LiveConnection[], next: Snapshot | undefined): void {
    const fresh = conns.filter((c) => !c.draining);
    if (fresh.length > 0) this.#drainLeaving(key, fresh, next);
    this.#log.info({ endpoint: key, connections: conns.length }, 'terminating endpoint gone: closing its connections now');
    const these = new Set<LiveConnection>(conns);
    this.#drain.flush((c) => these.has(c));
  }

  /** Paced 1012 over the route's drain window: the endpoint is terminating (Draining) or left without it. */
  #drainLeaving(key: string, conns: readonly LiveConnection[], next: Snapshot | undefined): void {
    // Connections of one endpoint may belong to routes with different windows: schedule per route.
    const byRoute = new Map<string, LiveConnection[]>();
    for (const c of conns) byRoute.set(c.route.key, [...(byRoute.get(c.route.key) ?? []), c]);
    for (const list of byRoute.values()) {
      const route = list[0].route;
      // A route that still exists paces with its current window.
      const windowMs = (next?.routes.get(route.key) ?? route).drain.windowMs;
      this.#o.metrics.connectionsDraining.inc(labels(route), list.length);
      if (this.#o.tracing) for (const c of list) this.#o.tracing.draining(c, 'endpoint leaving');
      this.#log.info({ endpoint: key, route: route.key, connections: list.length, windowSeconds: windowMs / 1000 }, 'endpoint leaving: draining');
      this.#drain.schedule(list, windowMs, CloseCode.ServiceRestart, 'backend restarting');
    }
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const e =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? Errors.headersTooLarge()
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? Errors.handshakeTimeout()
          : Errors.badHandshake(`malformed request: ${err.code ?? err.message}`);
    if (err.code === 'ECONNRESET') socket.destroy();
    else this.#refuseEarly(e, socket);
  }

  /** Refused before a request was parsed: no route, no connection counted. */
  #refuseEarly(e: WsgateError, socket: Duplex): void {
    this.#o.metrics.rejectionsTotal.inc({ namespace: '', route: '', reason: e.reason });
    if ((socket as Socket).writable) rejectUpgrade(socket, e);
    else socket.destroy();
  }

  #reject(socket: Duplex, err: WsgateError, match?: RouteMatch): void {
    const l = match ? labels(match.route) : { namespace: '', route: '' };
    this.#o.metrics.rejectionsTotal.inc({ ...l, reason: err.reason });
    this.#o.metrics.connectionsTotal.inc({ ...l, result: 'rejected' });
    this.#log.debug({ ...l, status: err.httpStatus, reason: err.reason, msg2: err.message }, 'upgrade refused');
    this.#o.tracing?.refused(socket as Socket, err, match);
    rejectUpgrade(socket, err);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const snapshot = this.#o.holder.current();
    const target = normalizeTarget(req.url ?? '/');
    const path = target instanceof WsgateError ? undefined : target;
    const match = snapshot && path && matchRoute(snapshot, req.headers.host ?? '', path.path, (n) => req.headers[n]);
    const fallback = match && match.route.httpFallback && this.#hooks.httpFallback;
    if (match && fallback && this.accepting) {
      fallback({ req, res, match, clientIp: socketAddress(req.socket.remoteAddress), ...(path!.target !== req.url ? { path: path!.target } : {}) });
      return;
    }
    // A long-polling client of a proxy that is shutting down must hear 503 (go elsewhere), not 426.
    if (fallback && !this.accepting) res.shouldKeepAlive = false;
    // Upgrade: websocket without the Connection token is a broken handshake, not a plain request (Node only
    // raises 'upgrade' when both are present).
    const broken = hasToken(req.headers.upgrade, 'websocket') ? checkUpgrade(req) : undefined;
    const err = broken ?? (target instanceof WsgateError ? target : !snapshot ? Errors.noEndpoint('not ready') : !match ? Errors.noRoute() : fallback ? Errors.shuttingDown() : Errors.upgradeRequired());
    // Broken handshakes are counted without a route, as on the upgrade path (they are refused before routing).
    const l = match && !broken ? labels(match.route) : { namespace: '', route: '' };
    this.#o.metrics.rejectionsTotal.inc({ ...l, reason: err.reason });
    res.writeHead(err.httpStatus, {
      'wsgate-reason': err.reason,
      'content-type': 'text/plain; charset=utf-8',
      ...(err.httpStatus === 426 ? { upgrade: 'websocket', connection: 'Upgrade' } : {}),
      ...err.headers,
    });
    res.end(`${err.message}\n`);
  }

  #onUpgrade(req: IncomingMessage | UpgradeRequest, socket: Socket, head: Buffer): void {
    // A measurement (wsgate_handshake_duration_seconds, buckets from 0.5 ms), not a deadline: it needs finer
    // than the clock's whole milliseconds, and nothing is decided on it.
    const started = performance.now();
    // The front's listener is already there; Node removes its own before 'upgrade'.
    if (socket.listenerCount('error') === 0) socket.on('error', destroyOnError);
    const secure = 'encrypted' in socket && Boolean((socket as { encrypted?: boolean }).encrypted);
    this.#o.tracing?.begin(req, socket, secure);
    if (this.#phase === 'refusing') return this.#reject(socket, Errors.shuttingDown());
    const bad = checkUpgrade(req);
    if (bad) return this.#reject(socket, bad);
    const target = normalizeTarget(req.url ?? '/');
    if (target instanceof WsgateError) return this.#reject(socket, target);
    const snapshot = this.#o.holder.current();
    if (!snapshot) return this.#reject(socket, Errors.noEndpoint('no routing table yet'));
    const match = matchRoute(snapshot, req.headers.host ?? '', target.path, (n) => req.headers[n]);
    if (!match) return this.#reject(socket, Errors.noRoute());
    if (this.#inFlight >= this.#o.maxHandshakesInFlight) return this.#reject(socket, Errors.overloaded(), match);
    this.#inFlight++;
    const ctx: HandshakeContext = {
      req,
      socket,
      match,
      clientIp: socketAddress(socket.remoteAddress),
      secure,
      correlation: correlation(req, this.#traceIds),
      // The normalized target goes upstream: the backend must see the path the route was matched on.
      forward: { drop: new Set(), extra: [], ...(target.target !== req.url ? { path: target.target } : {}) },
      responseHeaders: [],
      pick: {},
    };
    this.#o.tracing?.routed(ctx);
    // Node's head is a view of the request's read buffer: the relay keeps it, so an empty one is not passed on.
    this.#handshake(ctx, head.length === 0 ? EMPTY : Buffer.from(head), started).then(
      () => this.#inFlight--,
      (err: unknown) => {
        this.#inFlight--;
        this.#log.error({ err, route: match.route.key }, 'handshake failed unexpectedly');
        this.#reject(socket, Errors.noEndpoint('internal error'), match);
      },
    );
  }

  async #handshake(ctx: HandshakeContext, head: Buffer, started: number): Promise<void> {
    const { match, socket, req } = ctx;
    for (const check of this.#hooks.admission ?? []) {
      // Most checks answer at once: awaiting those would cost a microtask turn each, per handshake.
      let err = check(ctx);
      if (err instanceof Promise) err = await err;
      if (err) return this.#reject(socket, err, match);
      if (socket.destroyed) return;
    }
    if (match.rule.llm) return this.#hooks.llm ? this.#hooks.llm(ctx, head) : this.#reject(socket, Errors.noEndpoint('LLM front not enabled'), match);
    const { balance, upstream } = match.route;
    const tried = new Set<string>();
    let last: UpstreamResult | undefined;
    let chosen: Pick | undefined;
    for (let i = 0; i < upstream.maxConnectAttempts; i++) {
      const pick = pickEndpoint(match.rule, balance.policy, this.balancer, { ...ctx.pick, exclude: tried } as PickOptions);
      if (pick instanceof WsgateError) {
        if (last) break;
        return this.#reject(socket, pick, match);
      }
      chosen = pick;
      tried.add(pick.endpoint.key);
      this.#hooks.upstreamAttempt?.(ctx, pick);
      this.#o.tracing?.upstreamStart(ctx, pick);
      const attempt = openUpstream({
        clock: this.#clock,
        endpoint: pick.endpoint,
        path: ctx.forward.path ?? req.url ?? '/',
        headers: contextHeaders(ctx, true),
        key: String(req.headers['sec-websocket-key']).trim(),
        connectTimeoutMs: upstream.connectTimeoutMs,
        handshakeTimeoutMs: upstream.handshakeTimeoutMs,
        ...(ctx.upstreamTls ? { tls: ctx.upstreamTls } : {}),
      });
      let aborted = false;
      const onGone = () => {
        aborted = true;
        attempt.abort();
      };
      socket.once('close', onGone);
      last = await attempt.result;
      socket.off('close', onGone);
      this.#o.tracing?.upstreamEnd(ctx, last);
      // Local exhaustion (EMFILE...) is this process's overload: reported like an abandoned attempt, so the
      // endpoint's health and breaker never see it, and no other endpoint is tried with the same shortage.
      const local = last.kind === 'failed' ? last.local : undefined;
      if (local) this.#o.metrics.localResourceErrorsTotal.inc({ code: local });
      this.#hooks.upstreamResult?.(pick.endpoint, last.kind !== 'failed', { ctx, backend: pick.backend, aborted: aborted || local !== undefined });
      if (last.kind !== 'failed' || last.error.httpStatus === 502 && last.connected || local) break;
      if (socket.destroyed) break;
    }
    if (!last || !chosen) return;
    if (socket.destroyed) {
      if (last.kind === 'upgraded') last.socket.destroy();
      return;
    }
    if (last.kind === 'failed') return this.#reject(socket, last.error, match);
    const rm = this.#o.metrics.routeMetrics(match.route.namespace, match.route.name);
    if (last.kind === 'response') {
      rm.upstreamStatusRejection.inc();
      rm.upstreamStatus.inc();
      this.#o.tracing?.upstreamAnswered(socket, last.res.statusCode);
      relayUpstreamResponse(socket, last.res, last.body);
      return;
    }
    rm.upstreamConnectDuration.observe(last.connectMs / 1000);
    this.#establish(ctx, chosen.endpoint, last, head, started);
  }

  #establish(ctx: HandshakeContext, endpoint: Endpoint, up: Extract<UpstreamResult, { kind: 'upgraded' }>, head: Buffer, started: number): void {
    const { socket, match } = ctx;
    const route = match.route;
    const rm = this.#o.metrics.routeMetrics(route.namespace, route.name);
    socket.setNoDelay(true);
    if (ctx.subprotocolFallback && up.res.headers['sec-websocket-protocol'] === undefined) ctx.responseHeaders.push('Sec-WebSocket-Protocol', ctx.subprotocolFallback);
    socket.write(switchingProtocols(up.res, ctx.responseHeaders));
    const deflate = negotiatedDeflate(up.res.headers['sec-websocket-extensions']);
    const conn = new RelayedConnection(nextConnId++, route, endpoint, ctx.correlation, this.#clock.now());
    const onClose = this.#o.tracing?.established(ctx, conn);
    // The relay keeps this closure for the connection's life: it reaches conn, never ctx (and so the request).
    const relay = new Relay({
      client: socket,
      upstream: up.socket,
      clientHead: head,
      upstreamHead: up.head,
      deflate,
      maxMessageBytes: route.limits.maxMessageBytes,
      closeTimeoutMs: this.#o.closeTimeoutMs,
      wheel: this.#wheel,
      counters: this.#o.metrics.routeCounters(route.namespace, route.name),
      onEnd: (end: RelayEnd) => this.#onEnd(conn, end),
      ...(onClose ? { onClose } : {}),
    });
    conn.relay = relay;
    this.connections.add(conn);
    // A Draining endpoint chosen as the last resort, or one that began terminating or left while this handshake
    // was in flight: the connection leaves with the others, paced (at once if the endpoint left after Draining).
    const current = this.#o.holder.current();
    const state = stateFor(current, conn);
    if (state === 'Draining') this.#terminating.add(pairKey(conn));
    if (leaving(state)) {
      if (state === undefined && this.#terminating.has(pairKey(conn))) this.#closeNow(endpoint.key, [conn], current);
      else this.#drainLeaving(endpoint.key, [conn], current);
    }
    this.balancer.acquire(endpoint.key);
    rm.active.inc();
    rm.upgraded.inc();
    rm.handshakeDuration.observe((performance.now() - started) / 1000);
    this.#hooks.established?.(ctx, conn, relay);
  }

  #onEnd(conn: RelayedConnection, end: RelayEnd): void {
    const corr = conn.correlation;
    this.connections.remove(conn);
    this.balancer.release(conn.endpoint.key);
    const rm = this.#o.metrics.routeMetrics(conn.route.namespace, conn.route.name);
    rm.active.dec();
    conn.ended = true;
    if (conn.draining) rm.draining.dec();
    rm.closes(end.code, end.initiator).inc();
    this.#hooks.ended?.(conn, end);
    this.#o.tracing?.ended(conn, end);
    // Every connection ends here: with info off (the bench runs at warn) the line is not even built.
    if (!this.#log.isLevelEnabled('info')) return;
    this.#log.info(
      {
        conn: conn.id,
        route: conn.route.key,
        endpoint: conn.endpoint.address,
        durationMs: this.#clock.now() - conn.startedAt,
        messagesIn: end.stats.messagesFromClient,
        messagesOut: end.stats.messagesFromUpstream,
        bytesIn: end.stats.bytesFromClient,
        bytesOut: end.stats.bytesFromUpstream,
        closeCode: end.code,
        initiator: end.initiator,
        requestId: corr.requestId,
        traceparent: corr.traceparent,
      },
      'connection closed',
    );
  }
}

/** The state of this connection's endpoint among its route's endpoints in the snapshot; undefined when the
 *  route no longer has it (cache: per-route states, filled on demand, for a swap that checks many connections).
 *  An address listed twice in one route (two backends) counts with the state that keeps connections. */
function stateFor(s: Snapshot | undefined, c: LiveConnection, cache?: Map<string, ReadonlyMap<string, EndpointState>>): EndpointState | undefined {
  const route = s?.routes.get(c.route.key);
  if (!route) return undefined;
  let states = cache?.get(route.key);
  if (!states) {
    const m = new Map<string, EndpointState>();
    for (const rule of route.rules) for (const b of rule.backends) for (const e of b.endpoints) if (!m.has(e.key) || leaving(m.get(e.key))) m.set(e.key, e.state);
    cache?.set(route.key, m);
    states = m;
  }
  return states.get(c.endpoint.key);
}

/** Draining (terminating) or gone: its connections close with 1012. Active and NotReady keep theirs. */
function leaving(state: EndpointState | undefined): boolean {
  return state === undefined || state === 'Draining';
}

function pairKey(c: LiveConnection): string {
  return `${c.route.key}|${c.endpoint.key}`;
}

const EMPTY = Buffer.alloc(0);

/** A live connection as the registry sees it; a class rather than an object literal with a close closure, so an
 *  idle connection holds one small object here. */
class RelayedConnection implements LiveConnection {
  readonly id: number;
  readonly route: Route;
  readonly endpoint: Endpoint;
  /** On the process's clock (monotonic): only durations are read from it. */
  readonly startedAt: number;
  readonly correlation: Correlation;
  draining = false;
  ended = false;
  relay: Relay | undefined = undefined;

  constructor(id: number, route: Route, endpoint: Endpoint, correlation: Correlation, startedAt: number) {
    this.id = id;
    this.startedAt = startedAt;
    this.route = route;
    this.endpoint = endpoint;
    this.correlation = correlation;
  }

  close(code: number, reason: string): void {
    this.relay?.close(code, reason);
  }
}

// Shared by every client socket: a per-connection closure would stay on the socket for its whole life.
function destroyOnError(this: Socket): void {
  this.destroy();
}

function labels(r: { namespace: string; name: string }): { namespace: string; route: string } {
  return { namespace: r.namespace, route: r.name };
}
