// The data plane of one process: policies, health, affinity and the proxy (plus the TLS listener), reading
// the routing table from a holder. In workers mode every worker runs one of these.
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config.ts';
import { Health } from './health/health.ts';
import { createSecurity } from './policy/admission.ts';
import { TokenExpiry } from './policy/token-expiry.ts';
import { MessageLimits } from './policy/message-limits.ts';
import { affinityHooks } from './proxy/balance/affinity/index.ts';
import { Heartbeats } from './proxy/heartbeat.ts';
import type { ProxyHooks } from './proxy/hooks.ts';
import { LlmGateway } from './llm/gateway.ts';
import { ProxyServer } from './proxy/proxy-server.ts';
import { TlsListener } from './proxy/tls/tls-listener.ts';
import type { SnapshotHolder } from './model/holder.ts';
import { listen } from './telemetry/admin-server.ts';
import type { Logger } from './telemetry/logger.ts';
import type { Metrics } from './telemetry/metrics.ts';
import type { Clock, ClockTimer } from './util/clock.ts';
import { TimerWheel } from './util/timer-wheel.ts';

export interface DataPlane {
  readonly proxy: ProxyServer;
  readonly proxyAddress: AddressInfo;
  readonly tlsAddress?: AddressInfo;
  /** SIGTERM: upgrades accepted for the shutdown delay, then refused with 503; paced 1012 over the drain window. */
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

export async function startDataPlane(config: Config, log: Logger, metrics: Metrics, holder: SnapshotHolder, clock: Clock): Promise<DataPlane> {
  // Security: client address, filters, budgets, credentials and upstream TLS, before the endpoint pick.
  const security = createSecurity({ trustedProxies: config.trustedProxies, log, clock });
  const messageLimits = new MessageLimits({ metrics, clock });
  // Health: ejection, active checks and breakers veto endpoints once security has admitted the client;
  // heartbeats and idle timeouts watch every relayed connection on the proxy's one timer wheel.
  const wheel = new TimerWheel({ clock });
  const health = new Health({ holder, log, metrics, clock, connections: (key) => proxy.balancer.active.get(key) ?? 0, defaultMaxPendingHandshakes: config.maxPendingHandshakesPerBackend });
  const healthHooks = health.hooks();
  const heartbeats = new Heartbeats({ wheel, log, metrics }).hooks();
  const tokenExpiry = new TokenExpiry({ wheel }).hooks();
  // Affinity: last admission step, it only shapes the pick; and the HTTP fallback (long-polling), whose requests
  // pass security's fallback checks, health's veto and affinity, and report to health, as upgrades do.
  const affinity = affinityHooks({
    secret: config.affinitySecret,
    className: config.className,
    log,
    balancer: () => proxy.balancer,
    holder,
    metrics,
    trustedProxies: config.trustedProxies,
    fallback: {
      admission: [...security.fallbackAdmission, healthHooks.admission],
      upstreamAttempt: healthHooks.upstreamAttempt,
      upstreamResult: healthHooks.upstreamResult,
    },
  });
  const llm = new LlmGateway({ clock, registry: metrics.registry, log: log.child({ component: 'llm' }) });
  const hooks: ProxyHooks = {
    admission: [...security.admission, healthHooks.admission, ...affinity.admission],
    llm: llm.handle,
    httpFallback: affinity.httpFallback,
    upstreamAttempt: healthHooks.upstreamAttempt,
    upstreamResult: healthHooks.upstreamResult,
    established: (ctx, conn, relay) => {
      messageLimits.established(ctx, conn, relay);
      heartbeats.established(ctx, conn, relay);
      tokenExpiry.established(ctx, conn, relay);
    },
    ended: (conn, end) => {
      heartbeats.ended(conn, end);
      tokenExpiry.ended(conn, end);
    },
  };
  const proxy = new ProxyServer({
    holder,
    log,
    metrics,
    hooks,
    clock,
    wheel,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    maxHandshakesInFlight: config.maxHandshakesInFlight,
    maxConnections: config.maxConnections,
  });
  health.start();
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
    log.info({ tlsListen: formatAddress(tlsAddress) }, 'TLS listener serving');
  }
  const stopRest = () => {
    llm.close();
    affinity.close();
    health.stop();
    tlsListener?.close();
  };
  return {
    proxy,
    proxyAddress,
    ...(tlsAddress ? { tlsAddress } : {}),
    async shutdown() {
      proxy.beginShutdown();
      log.info({ delayMs: config.shutdownDelayMs, drainMs: config.drainMs, connections: proxy.connections.size }, 'shutdown: readiness off, still accepting during the propagation delay');
      await new Promise((r) => setTimeout(r, config.shutdownDelayMs));
      log.info({ connections: proxy.connections.size }, 'shutdown: refusing new upgrades, draining');
      // LLM sockets are not relayed connections: their in-flight requests get the same window to finish.
      let windowOver: ClockTimer | undefined;
      const llmDrained = Promise.race([llm.drain(), new Promise<void>((r) => (windowOver = clock.setTimeout(r, config.drainMs)))]);
      await Promise.all([proxy.drainAll(config.drainMs), llmDrained]);
      clock.clearTimeout(windowOver);
      await proxy.close();
      stopRest();
    },
    async close() {
      await proxy.close();
      stopRest();
    },
  };
}

export function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
