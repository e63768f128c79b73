// The data plane of one process: policies, health, affinity and the proxy (plus the TLS listener), reading
// the routing table from a holder. In workers mode every worker runs one of these.
import type { AddressInfo } from 'node:net';
import { startCluster } from './cluster/cluster.ts';
import type { Config } from './config/config.ts';
import { Health } from './health/health.ts';
import { createSecurity } from './policy/admission.ts';
import { TokenExpiry } from './policy/token-expiry.ts';
import { MessageLimits } from './policy/message-limits.ts';
import { affinityHooks } from './proxy/balance/affinity/index.ts';
import { BalancerState } from './proxy/balance/balancer.ts';
import { ConnectionRegistry } from './proxy/connections.ts';
import { Heartbeats } from './proxy/heartbeat.ts';
import type { ProxyHooks } from './proxy/hooks.ts';
import { LlmGateway } from './llm/gateway.ts';
import { ProxyServer } from './proxy/proxy-server.ts';
import { TlsListener } from './proxy/tls/tls-listener.ts';
import type { SnapshotHolder } from './model/holder.ts';
import { listen } from './telemetry/admin-server.ts';
import type { Logger } from './telemetry/logger.ts';
import type { Metrics } from './telemetry/metrics.ts';
import { createTracing } from './telemetry/tracing/provider.ts';
import { FallbackTracing } from './telemetry/tracing/fallback-tracing.ts';
import { LlmTracing } from './telemetry/tracing/llm-tracing.ts';
import { ProxyTracing } from './telemetry/tracing/proxy-tracing.ts';
import type { Clock, ClockTimer } from './util/clock.ts';
import { TimerWheel } from './util/timer-wheel.ts';

export interface DataPlane {
  readonly proxy: ProxyServer;
  readonly connections: ConnectionRegistry;
  readonly proxyAddress: AddressInfo;
  readonly tlsAddress?: AddressInfo;
  /** SIGTERM: upgrades accepted for the shutdown delay, then refused with 503; paced 1012 over the drain window. */
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

export async function startDataPlane(config: Config, log: Logger, metrics: Metrics, holder: SnapshotHolder, clock: Clock): Promise<DataPlane> {
  // Security: client address, filters, budgets, credentials and upstream TLS, before the endpoint pick.
  // Cluster: with --redis-url, connection budgets shared by every replica, and revocation.
  const cluster = await startCluster({ ...(config.redis ? { redis: config.redis } : {}), identity: config.podName, clock, log, registry: metrics.registry });
  const security = createSecurity({ trustedProxies: config.trustedProxies, log, clock, cluster });
  const messageLimits = new MessageLimits({ metrics, clock });
  // Health: ejection, active checks and breakers veto endpoints once security has admitted the client;
  // heartbeats and idle timeouts watch every relayed connection on the proxy's one timer wheel.
  const wheel = new TimerWheel({ clock });
  // The proxy's state, made before its readers: health counts open connections per endpoint, affinity bounds
  // load with them, and shutdown reports how many are open, none of them by reaching into the proxy.
  const balancer = new BalancerState();
  const connections = new ConnectionRegistry();
  const health = new Health({ holder, log, metrics, clock, connections: (key) => balancer.active.get(key) ?? 0, defaultMaxPendingHandshakes: config.maxPendingHandshakesPerBackend });
  const stopCollecting = metrics.onScrape(() => health.collect());
  const healthHooks = health.hooks();
  const heartbeats = new Heartbeats({ wheel, log, metrics }).hooks();
  const tokenExpiry = new TokenExpiry({ wheel }).hooks();
  // Off by default: without an OTLP endpoint the proxy gets no tracing object and makes none of its calls.
  const tracing = config.tracing ? createTracing(config.tracing) : undefined;
  if (config.tracing) log.info({ url: config.tracing.url, sampleRatio: config.tracing.sampleRatio }, 'tracing: exporting spans over OTLP/HTTP');
  const proxyTracing = tracing ? new ProxyTracing(tracing.tracer) : undefined;
  // Affinity: last admission step, it only shapes the pick; and the HTTP fallback (long-polling), whose requests
  // pass security's fallback checks, health's veto and affinity, and report to health, as upgrades do.
  const affinity = affinityHooks({
    secret: config.affinitySecret,
    className: config.className,
    log,
    balancer,
    clock,
    holder,
    metrics,
    trustedProxies: config.trustedProxies,
    fallback: {
      admission: [...security.fallbackAdmission, healthHooks.admission],
      upstreamAttempt: healthHooks.upstreamAttempt,
      upstreamResult: healthHooks.upstreamResult,
      ...(tracing ? { tracing: new FallbackTracing(tracing.tracer) } : {}),
    },
  });
  const llm = new LlmGateway({
    clock,
    holder,
    closeTimeoutMs: config.closeTimeoutMs,
    registry: metrics.registry,
    log: log.child({ component: 'llm' }),
    ...(tracing && proxyTracing ? { observe: new LlmTracing(tracing.tracer, proxyTracing).observe } : {}),
  });
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
      cluster.established(ctx, conn);
    },
    ended: (conn, end) => {
      heartbeats.ended(conn, end);
      tokenExpiry.ended(conn, end);
      cluster.ended(conn);
    },
  };
  const proxy = new ProxyServer({
    holder,
    log,
    metrics,
    hooks,
    balancer,
    connections,
    clock,
    wheel,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    maxHandshakesInFlight: config.maxHandshakesInFlight,
    maxConnections: config.maxConnections,
    closeTimeoutMs: config.closeTimeoutMs,
    ...(proxyTracing ? { tracing: proxyTracing } : {}),
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
  const stopRest = async () => {
    await llm.close();
    affinity.close();
    health.stop();
    stopCollecting();
    tlsListener?.close();
    // The last connection spans ended with the proxy: they go out before the process does (bounded by the
    // exporter's timeout; a collector that is down loses them, as it would have anyway).
    await tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'tracing: final export failed'));
    await cluster.close();
  };
  return {
    proxy,
    connections,
    proxyAddress,
    ...(tlsAddress ? { tlsAddress } : {}),
    async shutdown() {
      proxy.beginShutdown();
      log.info({ delayMs: config.shutdownDelayMs, drainMs: config.drainMs, connections: connections.size }, 'shutdown: readiness off, still accepting during the propagation delay');
      await new Promise<void>((r) => clock.setTimeout(r, config.shutdownDelayMs));
      log.info({ connections: connections.size }, 'shutdown: refusing new upgrades, draining');
      // LLM sockets are not relayed connections: their in-flight requests get the same window to finish.
      let windowOver: ClockTimer | undefined;
      const llmDrained = Promise.race([llm.drain(), new Promise<void>((r) => (windowOver = clock.setTimeout(r, config.drainMs)))]);
      await Promise.all([proxy.drainAll(config.drainMs), llmDrained]);
      clock.clearTimeout(windowOver);
      await proxy.close();
      await stopRest();
    },
    async close() {
      await proxy.close();
      await stopRest();
    },
  };
}

export function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
