// Composition root of a single process: control plane → holder → data plane, plus the admin server.
// Workers mode (src/workers/) composes the same planes across processes. Only the CLI imports this file.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/config.ts';
import { startControlPlane } from './control-plane.ts';
import { formatAddress, startDataPlane } from './data-plane.ts';
import type { ProxyServer } from './proxy/proxy-server.ts';
import type { ConnectionRegistry } from './proxy/connections.ts';
import { SnapshotHolder } from './model/holder.ts';
import { createAdminServer, isLoopback, listen } from './telemetry/admin-server.ts';
import type { Logger } from './telemetry/logger.ts';
import { Metrics } from './telemetry/metrics.ts';
import { systemClock, type Clock } from './util/clock.ts';

export interface Running {
  readonly proxyAddress: AddressInfo;
  /** --tls-listen, when set. */
  readonly tlsAddress?: AddressInfo;
  readonly adminAddress: AddressInfo;
  readonly holder: SnapshotHolder;
  readonly proxy: ProxyServer;
  /** The open relayed connections (the data plane's registry, which the proxy fills). */
  readonly connections: ConnectionRegistry;
  readonly metrics: Metrics;
  /** SIGTERM: readiness fails, upgrades accepted for the shutdown delay, then refused; paced 1012; stop. */
  shutdown(): Promise<void>;
  /** Stop at once (a second signal, tests). */
  close(): Promise<void>;
}

/** clock: the process's one clock (every timeout, rate, drain and lease runs on it); tests may pass a manual one. */
export async function serve(config: Config, log: Logger, clock: Clock = systemClock()): Promise<Running> {
  const metrics = new Metrics();
  const holder = new SnapshotHolder();
  let shuttingDown = false;
  const control = await startControlPlane(config, log, metrics, holder, clock);
  const data = await startDataPlane(config, log, metrics, holder, clock);
  const admin = createAdminServer({
    metrics,
    snapshot: () => holder.current(),
    debugEndpoints: config.debugEndpoints,
    ready: () => readiness(shuttingDown, control.synced(), holder),
  });
  const adminAddress = await listen(admin, config.adminListen.host, config.adminListen.port);
  warnDebugExposed(config, log);
  log.info({ listen: formatAddress(data.proxyAddress), admin: formatAddress(adminAddress), mode: config.mode, generation: holder.current()?.generation }, 'wsgate serving');

  const stopRest = async () => {
    await control.stop();
    await closeServer(admin);
  };
  return {
    proxyAddress: data.proxyAddress,
    ...(data.tlsAddress ? { tlsAddress: data.tlsAddress } : {}),
    adminAddress,
    holder,
    proxy: data.proxy,
    connections: data.connections,
    metrics,
    async shutdown() {
      shuttingDown = true;
      await data.shutdown();
      await stopRest();
      log.info('shutdown complete');
    },
    async close() {
      shuttingDown = true;
      await data.close();
      await stopRest();
    },
  };
}

export function readiness(shuttingDown: boolean, synced: boolean, holder: SnapshotHolder): { ready: boolean; why: string } {
  if (shuttingDown) return { ready: false, why: 'shutting down' };
  if (!synced) return { ready: false, why: 'sources not synced' };
  if (!holder.current()) return { ready: false, why: 'no routing table yet' };
  return { ready: true, why: '' };
}

/** --debug-endpoints on an admin port that is not loopback-only: /debug/* reaches whoever reaches the pod. */
export function warnDebugExposed(config: Config, log: Logger): void {
  if (config.debugEndpoints && !isLoopback(config.adminListen.host)) {
    log.warn({ admin: config.adminListen.host, port: config.adminListen.port }, '--debug-endpoints: /debug/* (backend addresses, route names) is served to every peer of a non-loopback admin address');
  }
}

export function closeServer(s: http.Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
