// Non-upgrade HTTP on routes with httpFallback.enabled (Socket.IO / SockJS long-polling): proxied to the
// endpoint affinity chooses, so a session that starts polling and upgrades later stays on one pod. Bodies
// stream both ways; upstream connections are kept alive per endpoint; hop-by-hop headers are dropped and
// X-Forwarded-* set as on the upgrade path. The timeout is an idle timeout (no byte either way for
// httpFallback.timeoutSeconds), because a long-poll legitimately waits for its answer.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Errors, WsgateError } from '../errors.ts';
import type { Backend, Endpoint, Route } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../snapshot/holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { pickEndpoint, type BalancerState } from './balancer.ts';
import { correlation, forwardHeaders } from './forward-headers.ts';
import type { HttpFallbackContext } from './hooks.ts';
import { hopByHop } from './reject.ts';
import type { UpstreamTls } from './upstream.ts';

export interface FallbackChoice {
  readonly hashPick?: (candidates: readonly Endpoint[], backend: Backend) => Endpoint | undefined;
  readonly setCookie?: (endpoint: Endpoint) => string | undefined;
  readonly random?: () => number;
  readonly clientIp: string;
  readonly trustForwarded: boolean;
}

export interface HttpFallbackOptions {
  readonly balancer: () => BalancerState;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Agents of endpoints that leave the snapshot are closed. */
  readonly holder?: SnapshotHolder;
  /** Affinity (and client address) for this request. */
  readonly choose: (ctx: HttpFallbackContext) => FallbackChoice;
  /** Admission for fallback requests (credentials, client address filters); an error answers with its status. */
  readonly admit?: (ctx: HttpFallbackContext) => WsgateError | undefined | Promise<WsgateError | undefined>;
  /** TLS to the upstream for routes with upstream.protocol wss. */
  readonly upstreamTls?: (route: Route) => UpstreamTls | undefined;
}

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS']);

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

  handle(ctx: HttpFallbackContext): void {
    if (!this.#o.admit) return this.#proxy(ctx);
    Promise.resolve(this.#o.admit(ctx)).then(
      (err) => (err ? this.#fail(ctx.res, ctx.match.route, err) : this.#proxy(ctx)),
      (err: unknown) => {
        this.#log.error({ err, route: ctx.match.route.key }, 'fallback admission failed unexpectedly');
        this.#fail(ctx.res, ctx.match.route, Errors.noEndpoint('internal error'));
      },
    );
  }

  #proxy(ctx: HttpFallbackContext): void {
    const { req, res, match } = ctx;
    const route = match.route;
    const spec = route.spec;
    const choice = this.#o.choose(ctx);
    const pick = pickEndpoint(match.rule, spec.loadBalancer?.policy ?? 'LeastConnections', this.#o.balancer(), {
      ...(choice.hashPick ? { hashPick: choice.hashPick } : {}),
      ...(choice.random ? { random: choice.random } : {}),
    });
    if (pick instanceof WsgateError) return this.#fail(res, route, pick);
    const endpoint = pick.endpoint;
    const cookie = choice.setCookie?.(endpoint);
    const headers = forwardHeaders(req, {
      clientIp: choice.clientIp,
      secure: 'encrypted' in req.socket && Boolean((req.socket as { encrypted?: boolean }).encrypted),
      correlation: correlation(req),
      trustForwarded: choice.trustForwarded,
      upgrade: false,
    });
    const tls = spec.upstream?.protocol === 'wss' ? this.#o.upstreamTls?.(route) ?? { rejectUnauthorized: true } : undefined;
    const idleMs = (spec.httpFallback?.timeoutSeconds ?? 60) * 1000;
    const connectMs = (spec.upstream?.connectTimeoutSeconds ?? 5) * 1000;
    // A kept-alive socket the upstream closed meanwhile fails before any byte is answered: a bodiless
    // idempotent request is retried once on a fresh connection.
    const bodiless = !req.headers['content-length'] && !req.headers['transfer-encoding'];
    const retriesLeft = bodiless && idempotent.has(req.method ?? '') ? 1 : 0;
    if (bodiless) req.resume();
    this.#send(ctx, endpoint, headers, tls, { idleMs, connectMs, cookie, bodiless, retriesLeft });
  }

  #send(
    ctx: HttpFallbackContext,
    endpoint: Endpoint,
    headers: string[],
    tls: UpstreamTls | undefined,
    o: { idleMs: number; connectMs: number; cookie: string | undefined; bodiless: boolean; retriesLeft: number },
  ): void {
    const { req, res, match } = ctx;
    const up = (tls ? https : http).request({
      host: endpoint.host,
      port: endpoint.port,
      method: req.method,
      path: req.url,
      headers,
      setHost: false,
      agent: this.#agent(endpoint, tls),
      ...(tls ? { servername: tls.servername ?? endpoint.host, ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized } : {}),
    });
    let answered = false;
    let connectTimer: NodeJS.Timeout | undefined;
    up.on('socket', (s: Socket) => {
      if (!s.connecting) return;
      connectTimer = setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT_CONNECT' })), o.connectMs);
      s.once('connect', () => clearTimeout(connectTimer));
    });
    up.setTimeout(o.idleMs, () => up.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT_IDLE' })));
    // The client left: stop the upstream exchange too (and its long-poll).
    const onClientGone = () => {
      if (!res.writableFinished) up.destroy();
    };
    res.once('close', onClientGone);
    up.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      res.off('close', onClientGone);
      if (answered) return void res.destroy();
      if (o.retriesLeft > 0 && up.reusedSocket && err.code === 'ECONNRESET' && !res.destroyed) {
        return this.#send(ctx, endpoint, headers, tls, { ...o, retriesLeft: o.retriesLeft - 1 });
      }
      const e =
        err.code === 'ETIMEDOUT_CONNECT' || err.code === 'ETIMEDOUT_IDLE'
          ? Errors.upstreamTimeout(`${endpoint.address}: ${err.code === 'ETIMEDOUT_IDLE' ? 'no answer in time' : 'connect timed out'}`)
          : Errors.upstreamRefused(`${endpoint.address}: ${err.code ?? err.message}`);
      this.#fail(res, match.route, e);
    });
    up.on('response', (ur: IncomingMessage) => {
      answered = true;
      const out: string[] = [];
      const listed = new Set(String(ur.headers.connection ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
      for (let i = 0; i < ur.rawHeaders.length; i += 2) {
        const lk = ur.rawHeaders[i].toLowerCase();
        if (hopByHop.has(lk) || listed.has(lk)) continue;
        out.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
      }
      if (o.cookie) out.push('Set-Cookie', o.cookie);
      if (res.destroyed) return void up.destroy();
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, out);
      ur.pipe(res);
      ur.on('end', () => res.off('close', onClientGone));
      // An upstream that dies mid-body must not look like a complete answer to the client.
      ur.on('close', () => {
        if (!ur.complete) res.destroy();
      });
    });
    if (o.bodiless) up.end();
    else req.pipe(up);
  }

  #agent(endpoint: Endpoint, tls: UpstreamTls | undefined): http.Agent {
    const key = `${tls ? 'tls' : 'tcp'}#${endpoint.key}`;
    let a = this.#agents.get(key);
    if (!a) {
      // Free sockets time out before Node servers' default 5 s keep-alive, so a reused socket is rarely stale.
      const opts = { keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 64, timeout: 4000, scheduling: 'lifo' as const };
      a = tls ? new https.Agent(opts) : new http.Agent(opts);
      this.#agents.set(key, a);
    }
    return a;
  }

  #fail(res: ServerResponse, route: Route, err: WsgateError): void {
    this.#o.metrics?.rejectionsTotal.inc({ namespace: route.namespace, route: route.name, reason: err.reason });
    this.#log.debug({ route: route.key, status: err.httpStatus, reason: err.reason, detail: err.message }, 'fallback request failed');
    if (res.headersSent) return void res.destroy();
    if (res.destroyed) return;
    res.writeHead(err.httpStatus, { 'wsgate-reason': err.reason, 'content-type': 'text/plain; charset=utf-8', ...err.headers });
    res.end(`${err.message}\n`);
  }
}
