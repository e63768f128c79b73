// Composition root: config → telemetry → source → controller → proxy → admin; signals and shutdown.
// Nothing imports this file but the CLI.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBuilder } from './build/build.ts';
import { createSpecValidator } from './api/validate.ts';
import type { Config } from './config/config.ts';
import { Controller } from './controller/controller.ts';
import { ProxyServer } from './proxy/proxy-server.ts';
import { Health } from './health/health.ts';
import { Heartbeats } from './proxy/heartbeat.ts';
import { TimerWheel } from './util/timer-wheel.ts';
import type { ProxyHooks } from './proxy/hooks.ts';
import { affinityHooks } from './proxy/affinity/index.ts';
import { createSecurity } from './policy/admission.ts';
import { MessageLimits } from './policy/message-limits.ts';
import { TlsListener } from './proxy/tls/tls-listener.ts';
import { SnapshotHolder } from './snapshot/holder.ts';
import { createSource } from './sources/create-source.ts';
import type { Source } from './sources/source.ts';
import { createAdminServer, listen } from './telemetry/admin-server.ts';
import type { Logger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';

export interface Running {
  readonly proxyAddress: AddressInfo;
  /** --tls-listen, when set. */
  readonly tlsAddress?: AddressInfo;
  readonly adminAddress: AddressInfo;
  readonly holder: SnapshotHolder;
  readonly proxy: ProxyServer;
  readonly metrics: Metrics;
  /** SIGTERM: readiness fails, upgrades accepted for the shutdown delay, then refused; paced 1012; stop. */
  shutdown(): Promise<void>;
  /** Stop at once (a second signal, tests). */
  close(): Promise<void>;
}

export async function serve(config: Config, log: Logger): Promise<Running> {
  const metrics = new Metrics();
  const holder = new SnapshotHolder();
  const validate = createSpecValidator();
  const build = createBuilder({ className: config.className, allowStaticEndpoints: config.allowStaticEndpoints, mode: config.mode });
  let shuttingDown = false;

  const sources = await createSource(config, { validate, log, metrics });
  const source: Source = sources.source;
  const controller = new Controller({
    source,
    build,
    holder,
    log,
    metrics,
    holdoffMs: config.buildHoldoffMs,
    maxHoldoffMs: config.buildMaxHoldoffMs,
    onStatuses: (statuses) => sources.onStatuses(statuses),
  });
  await sources.start();
  // Standalone has its state already; Kubernetes builds once every informer has listed (readyz waits too).
  if (config.mode === 'standalone') controller.start();
  else void sources.whenSynced().then(() => controller.start());

  // Security (issue 5): client address, filters, budgets, credentials and upstream TLS, before the endpoint pick.
  const security = createSecurity({ trustedProxies: config.trustedProxies, log });
  const messageLimits = new MessageLimits({ metrics });
  // Health (issue 6): ejection, active checks and breakers veto endpoints once security has admitted the client;
  // heartbeats and idle timeouts watch every relayed connection on the proxy's one timer wheel.
  const wheel = new TimerWheel();
  const health = new Health({ holder, log, metrics, connections: (key) => proxy.balancer.active.get(key) ?? 0 });
  const healthHooks = health.hooks();
  const heartbeats = new Heartbeats({ wheel, log, metrics }).hooks();
  // Affinity (issue 4): last admission step, it only shapes the pick; and the HTTP fallback (long-polling).
  const affinity = affinityHooks({ secret: config.affinitySecret, className: config.className, log, balancer: () => proxy.balancer, holder, metrics, trustedProxies: config.trustedProxies });
  const hooks: ProxyHooks = {
    admission: [...security.admission, healthHooks.admission, ...affinity.admission],
    httpFallback: affinity.httpFallback,
    upstreamAttempt: healthHooks.upstreamAttempt,
    upstreamResult: healthHooks.upstreamResult,
    established: (ctx, conn, relay) => {
      messageLimits.established(ctx, conn, relay);
      heartbeats.established(ctx, conn, relay);
    },
    ended: heartbeats.ended,
  };
  const proxy = new ProxyServer({
    holder,
    log,
    metrics,
    hooks,
    wheel,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    maxHandshakesInFlight: config.maxHandshakesInFlight,
  });
  health.start();
  const admin = createAdminServer({
    metrics,
    snapshot: () => holder.current(),
    ready: () => {
      if (shuttingDown) return { ready: false, why: 'shutting down' };
      if (!source.synced()) return { ready: false, why: 'sources not synced' };
      if (!holder.current()) return { ready: false, why: 'no routing table yet' };
      return { ready: true, why: '' };
    },
  });
  const proxyAddress = await listen(proxy.server, config.listen.host, config.listen.port);
  let tlsListener: TlsListener | undefined;
  let tlsAddress: AddressInfo | undefined;
  if (config.tlsListen) {
    tlsListener = new TlsListener({
      holder,
      log,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      maxHeaderBytes: config.maxHeaderBytes,
      ...(config.defaultCertFile ? { defaultCertFile: config.defaultCertFile, defaultKeyFile: config.defaultKeyFile } : {}),
    });
    await tlsListener.start();
    proxy.attach(tlsListener.server);
    tlsAddress = await listen(tlsListener.server, config.tlsListen.host, config.tlsListen.port);
    log.info({ tlsListen: fmt(tlsAddress) }, 'TLS listener serving');
  }
  const adminAddress = await listen(admin, config.adminListen.host, config.adminListen.port);
  log.info({ listen: fmt(proxyAddress), admin: fmt(adminAddress), mode: config.mode, generation: holder.current()?.generation }, 'wsgate serving');

  const stopRest = async () => {
    affinity.close();
    health.stop();
    tlsListener?.close();
    controller.stop();
    await sources.stop();
    await closeServer(admin);
  };
  return {
    proxyAddress,
    ...(tlsAddress ? { tlsAddress } : {}),
    adminAddress,
    holder,
    proxy,
    metrics,
    async shutdown() {
      shuttingDown = true;
      proxy.beginShutdown();
      log.info({ delayMs: config.shutdownDelayMs, drainMs: config.drainMs, connections: proxy.connections.size }, 'shutdown: readiness off, still accepting during the propagation delay');
      await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
      log.info({ connections: proxy.connections.size }, 'shutdown: refusing new upgrades, draining');
      await proxy.drainAll(config.drainMs);
      await proxy.close();
      await stopRest();
      log.info('shutdown complete');
    },
    async close() {
      shuttingDown = true;
      await proxy.close();
      await stopRest();
    },
  };
}

function fmt(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function closeServer(s: http.Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
