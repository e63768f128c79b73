// The admin HTTP server: /metrics, /healthz (the process is alive), /readyz (a snapshot is published, every
// source synced, not shutting down) and /debug/snapshot (the live table as JSON, no secrets).
//
// The port is reachable from the pod network (kubelet probes, Prometheus), so it is hardened like a public one:
// /debug/* names backend addresses and routes, and is answered only to loopback peers (kubectl port-forward
// arrives on the pod's loopback) unless --debug-endpoints; header and request deadlines end slowloris clients;
// a connection cap bounds the descriptors it can take.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Snapshot } from '../model/snapshot.ts';
import type { Metrics } from './metrics.ts';

export interface AdminOptions {
  readonly metrics: Metrics;
  readonly ready: () => { ready: boolean; why: string };
  readonly snapshot: () => Snapshot | undefined;
  /** Workers mode: the primary aggregates the workers' metrics. */
  readonly metricsText?: () => Promise<string>;
  /** --debug-endpoints: serve /debug/* to any peer, not only loopback ones. */
  readonly debugEndpoints?: boolean;
  /** The whole request head must arrive within this (408 otherwise). */
  readonly headersTimeoutMs?: number;
  readonly maxConnections?: number;
}

/** Defaults of the admin server's limits: a scrape or probe sends one small GET; nothing legitimate is slow. */
export const adminLimits = { headersTimeoutMs: 5000, requestTimeoutMs: 10000, keepAliveTimeoutMs: 5000, maxConnections: 64 } as const;

/** Whether /debug/* is answered to this peer. */
export function debugAllowed(remoteAddress: string | undefined, debugEndpoints: boolean): boolean {
  return debugEndpoints || isLoopback(remoteAddress);
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return address === '::1' || address === 'localhost';
}

export function createAdminServer(opts: AdminOptions): http.Server {
  const headersTimeout = opts.headersTimeoutMs ?? adminLimits.headersTimeoutMs;
  const server = http.createServer({
    headersTimeout,
    requestTimeout: Math.max(headersTimeout, adminLimits.requestTimeoutMs),
    keepAliveTimeout: adminLimits.keepAliveTimeoutMs,
    // Node checks the deadlines above only this often (30 s by default).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return send(200, 'ok\n');
      case '/readyz': {
        const r = opts.ready();
        return send(r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.why}\n`);
      }
      case '/metrics':
        (opts.metricsText ? opts.metricsText() : opts.metrics.registry.metrics()).then(
          (text) => send(200, text, opts.metrics.registry.contentType),
          (err: Error) => send(500, `metrics failed: ${err.message}\n`),
        );
        return;
      case '/debug/snapshot':
        if (!debugAllowed(req.socket.remoteAddress, opts.debugEndpoints ?? false)) return send(404, 'not found\n');
        return send(200, JSON.stringify(snapshotView(opts.snapshot()), null, 2) + '\n', 'application/json');
      default:
        return send(404, 'not found\n');
    }
  });
  // Past the cap Node closes new connections at accept.
  server.maxConnections = opts.maxConnections ?? adminLimits.maxConnections;
  return server;
}

/** The table as operators want to read it; certificate keys are never shown. */
export function snapshotView(s: Snapshot | undefined): unknown {
  if (!s) return { generation: 0, routes: [] };
  return {
    generation: s.generation,
    hash: s.hash,
    routes: [...s.routes.values()].map((r) => ({
      key: r.key,
      generation: r.generation,
      hostnames: r.hostnames,
      rules: r.rules.map((rule) => ({
        index: rule.index,
        backends: rule.backends.map((b) => ({ id: b.id, weight: b.weight, resolved: b.resolved, endpoints: b.endpoints.map((e) => ({ address: e.address, state: e.state, ...(e.zone ? { zone: e.zone } : {}) })) })),
      })),
    })),
    certificates: [...s.certificates.keys()],
  };
}

export function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
