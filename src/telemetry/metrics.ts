// prom-client metrics on a registry made by main (never the global one). The relay's hot path adds to plain
// per-route numbers (RouteCounters); they reach Prometheus at scrape time through collect(), so counting a
// message costs an addition, not a label lookup.
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { EndpointsGauge, RenderedRegistry } from './endpoints-gauge.ts';

/** Mutable totals shared by every connection of a route; the relay adds to them as it goes. */
export interface RouteCounters {
  messagesFromClient: number;
  messagesFromUpstream: number;
  bytesFromClient: number;
  bytesFromUpstream: number;
}

type Labels = { namespace: string; route: string };

/** One route's label children of the per-connection metrics, resolved once: prom-client hashes and validates a
 *  label object on every call otherwise, several times per handshake. */
export interface RouteMetrics {
  readonly labels: Readonly<Labels>;
  readonly active: Gauge.Internal<'namespace' | 'route'>;
  readonly draining: Gauge.Internal<'namespace' | 'route'>;
  readonly upgraded: Counter.Internal;
  readonly upstreamStatus: Counter.Internal;
  readonly upstreamStatusRejection: Counter.Internal;
  readonly handshakeDuration: Histogram.Internal<'namespace' | 'route'>;
  readonly upstreamConnectDuration: Histogram.Internal<'namespace' | 'route'>;
  /** wsgate_closes_total for one close code and initiator. */
  closes(code: number, initiator: string): Counter.Internal;
}

// RFC 6455 §7.4.1 and the IANA WebSocket Close Code Number Registry (1012-1014):
// https://www.iana.org/assignments/websocket/websocket.xhtml#close-code-number
// 1005, 1006 and 1015 never travel in a close frame but name how a connection ended.
const registeredCloseCodes = new Set([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015]);

/** The `code` label of wsgate_closes_total. A close code is chosen by whoever is on the other end of the wire:
 *  one series per code it picks would let clients grow the registry without bound, so only registered codes keep
 *  their number; the ranges RFC 6455 §7.4.2 leaves to libraries and applications share `3xxx` and `4xxx`, and
 *  every code never allowed on the wire is `invalid`. */
export function closeCodeLabel(code: number): string {
  if (registeredCloseCodes.has(code)) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'invalid';
}

export class Metrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge<'namespace' | 'route'>;
  readonly connectionsTotal: Counter<'namespace' | 'route' | 'result'>;
  readonly connectionsDraining: Gauge<'namespace' | 'route'>;
  readonly handshakeDuration: Histogram<'namespace' | 'route'>;
  readonly upstreamConnectDuration: Histogram<'namespace' | 'route'>;
  readonly messagesTotal: Counter<'namespace' | 'route' | 'direction'>;
  readonly bytesTotal: Counter<'namespace' | 'route' | 'direction'>;
  readonly closesTotal: Counter<'namespace' | 'route' | 'code' | 'initiator'>;
  readonly rejectionsTotal: Counter<'namespace' | 'route' | 'reason'>;
  readonly endpoints: EndpointsGauge;
  readonly drainClosesTotal: Counter<'namespace' | 'route'>;
  readonly snapshotBuildsTotal: Counter<'result'>;
  readonly snapshotBuildDuration: Histogram;
  readonly snapshotGeneration: Gauge;
  readonly informerRestartsTotal: Counter<'resource'>;
  readonly statusWritesRefusedTotal: Counter<'kind' | 'code'>;
  // Health, breakers, heartbeats.
  readonly endpointEjectionsTotal: Counter<'namespace' | 'route' | 'backend'>;
  readonly endpointsEjected: Gauge<'namespace' | 'route' | 'backend'>;
  readonly healthCheckTransitionsTotal: Counter<'namespace' | 'route' | 'state'>;
  readonly circuitBreakerState: Gauge<'namespace' | 'route' | 'backend'>;
  readonly heartbeatTimeoutsTotal: Counter<'namespace' | 'route' | 'side'>;
  readonly idleClosesTotal: Counter<'namespace' | 'route'>;
  readonly httpRequestsTotal: Counter<'namespace' | 'route' | 'code'>;
  readonly httpRequestDuration: Histogram<'namespace' | 'route'>;
  readonly localResourceErrorsTotal: Counter<'code'>;
  /** Called at scrape time before the time-driven gauges are read (ejections expire, breakers half-open);
   *  the composition root registers them (onScrape), so no lower module writes into this one. */
  readonly #scrapeHooks: (() => void)[] = [];
  readonly #routes = new Map<string, { labels: Labels; counters: RouteCounters; seen: RouteCounters }>();
  readonly #routeMetrics = new Map<string, RouteMetrics>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registry = (this.registry = new RenderedRegistry());
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'wsgate_process_' });
    const routeLabels = ['namespace', 'route'] as const;
    this.connectionsActive = new Gauge({ name: 'wsgate_connections_active', help: 'Open WebSocket connections (the HPA metric).', labelNames: routeLabels, registers: [registry] });
    this.connectionsTotal = new Counter({ name: 'wsgate_connections_total', help: 'Upgrade attempts by result.', labelNames: [...routeLabels, 'result'], registers: [registry] });
    this.connectionsDraining = new Gauge({ name: 'wsgate_connections_draining', help: 'Connections scheduled for a paced 1012 close.', labelNames: routeLabels, registers: [registry] });
    this.handshakeDuration = new Histogram({ name: 'wsgate_handshake_duration_seconds', help: 'From the client request to the 101 sent back.', labelNames: routeLabels, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
    this.upstreamConnectDuration = new Histogram({ name: 'wsgate_upstream_connect_duration_seconds', help: 'TCP (and TLS) connect to the upstream.', labelNames: routeLabels, buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5], registers: [registry] });
    const routes = this.#routes;
    const deltas = (metric: Counter<'namespace' | 'route' | 'direction'>, fromClient: keyof RouteCounters, fromUpstream: keyof RouteCounters) => {
      for (const r of routes.values()) {
        for (const [key, direction] of [[fromClient, 'client_to_upstream'], [fromUpstream, 'upstream_to_client']] as const) {
          const d = r.counters[key] - r.seen[key];
          if (d > 0) {
            metric.inc({ ...r.labels, direction }, d);
            r.seen[key] = r.counters[key];
          }
        }
      }
    };
    this.messagesTotal = new Counter({
      name: 'wsgate_messages_total', help: 'WebSocket messages relayed.', labelNames: [...routeLabels, 'direction'], registers: [registry],
      collect() { deltas(this, 'messagesFromClient', 'messagesFromUpstream'); },
    });
    this.bytesTotal = new Counter({
      name: 'wsgate_bytes_total', help: 'Bytes relayed after the upgrade (frame headers included).', labelNames: [...routeLabels, 'direction'], registers: [registry],
      collect() { deltas(this, 'bytesFromClient', 'bytesFromUpstream'); },
    });
    this.closesTotal = new Counter({ name: 'wsgate_closes_total', help: 'Finished connections by close code and who closed first.', labelNames: [...routeLabels, 'code', 'initiator'], registers: [registry] });
    this.rejectionsTotal = new Counter({ name: 'wsgate_rejections_total', help: 'Refused upgrades and requests by reason (the wsgate-reason header).', labelNames: [...routeLabels, 'reason'], registers: [registry] });
    this.endpoints = new EndpointsGauge(registry);
    this.drainClosesTotal = new Counter({ name: 'wsgate_drain_closes_total', help: 'Connections closed with 1012 by a drain.', labelNames: routeLabels, registers: [registry] });
    this.snapshotBuildsTotal = new Counter({ name: 'wsgate_snapshot_builds_total', help: 'Routing table builds by result (published, unchanged, failed).', labelNames: ['result'], registers: [registry] });
    this.snapshotBuildDuration = new Histogram({ name: 'wsgate_snapshot_build_duration_seconds', help: 'Time to build the routing table.', buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
    this.snapshotGeneration = new Gauge({ name: 'wsgate_snapshot_generation', help: 'Generation of the published routing table.', registers: [registry] });
    this.informerRestartsTotal = new Counter({ name: 'wsgate_informer_restarts_total', help: 'Kubernetes informer restarts by resource.', labelNames: ['resource'], registers: [registry] });
    this.statusWritesRefusedTotal = new Counter({ name: 'wsgate_status_writes_refused_total', help: 'Status writes the API server refused for good (a 4xx other than 408, 409, 429), not sent again until the value changes, by kind of object and HTTP status.', labelNames: ['kind', 'code'], registers: [registry] });
    // Health, breakers, heartbeats.
    const backendLabels = [...routeLabels, 'backend'] as const;
    const healthCollect = () => {
      for (const hook of this.#scrapeHooks) hook();
    };
    this.endpointEjectionsTotal = new Counter({ name: 'wsgate_endpoint_ejections_total', help: 'Endpoints ejected by passive health (consecutive connect/handshake failures).', labelNames: backendLabels, registers: [registry] });
    this.endpointsEjected = new Gauge({ name: 'wsgate_endpoints_ejected', help: 'Endpoints currently ejected by passive health.', labelNames: backendLabels, registers: [registry], collect: healthCollect });
    this.healthCheckTransitionsTotal = new Counter({ name: 'wsgate_health_check_transitions_total', help: 'Active health check state changes of endpoints (state: healthy, unhealthy).', labelNames: [...routeLabels, 'state'], registers: [registry] });
    this.circuitBreakerState = new Gauge({ name: 'wsgate_circuit_breaker_state', help: 'Failure circuit of a backend: 0 closed, 1 open, 2 half-open.', labelNames: backendLabels, registers: [registry], collect: healthCollect });
    this.heartbeatTimeoutsTotal = new Counter({ name: 'wsgate_heartbeat_timeouts_total', help: 'Connections closed because a peer did not answer the proxy ping in time (side: client, upstream).', labelNames: [...routeLabels, 'side'], registers: [registry] });
    this.idleClosesTotal = new Counter({ name: 'wsgate_idle_closes_total', help: 'Connections closed by limits.idleTimeoutSeconds.', labelNames: routeLabels, registers: [registry] });
    this.httpRequestsTotal = new Counter({ name: 'wsgate_http_requests_total', help: 'HTTP fallback (long-polling) requests by the status answered (code: a registered HTTP status, NXX for others, none when the client left first).', labelNames: [...routeLabels, 'code'], registers: [registry] });
    this.httpRequestDuration = new Histogram({ name: 'wsgate_http_request_duration_seconds', help: 'HTTP fallback requests, from the request to the end of the answer (long-polls included).', labelNames: routeLabels, buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [registry] });
    this.localResourceErrorsTotal = new Counter({ name: 'wsgate_local_resource_errors_total', help: 'Upstream connects that failed for want of local resources (code: EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS), answered 503 overloaded.', labelNames: ['code'], registers: [registry] });
  }

  /** Registers a refresh of time-driven gauges, run when wsgate_endpoints_ejected or
   *  wsgate_circuit_breaker_state is scraped; the returned function removes it. */
  onScrape(hook: () => void): () => void {
    this.#scrapeHooks.push(hook);
    return () => {
      const i = this.#scrapeHooks.indexOf(hook);
      if (i >= 0) this.#scrapeHooks.splice(i, 1);
    };
  }

  /** The live counters of one route, created on first use and kept for the life of the process. */
  routeCounters(namespace: string, route: string): RouteCounters {
    const key = `${namespace}/${route}`;
    let r = this.#routes.get(key);
    if (!r) {
      const zero = (): RouteCounters => ({ messagesFromClient: 0, messagesFromUpstream: 0, bytesFromClient: 0, bytesFromUpstream: 0 });
      r = { labels: { namespace, route }, counters: zero(), seen: zero() };
      this.#routes.set(key, r);
    }
    return r.counters;
  }

  /** The label children of one route, made on first use and kept for the life of the process (as prom-client
   *  keeps the series themselves). */
  routeMetrics(namespace: string, route: string): RouteMetrics {
    const key = `${namespace}/${route}`;
    let m = this.#routeMetrics.get(key);
    if (!m) {
      const labels = { namespace, route };
      const closes = new Map<string, Counter.Internal>();
      const closesTotal = this.closesTotal;
      m = {
        labels,
        active: this.connectionsActive.labels(labels),
        draining: this.connectionsDraining.labels(labels),
        upgraded: this.connectionsTotal.labels({ ...labels, result: 'upgraded' }),
        upstreamStatus: this.connectionsTotal.labels({ ...labels, result: 'upstream_status' }),
        upstreamStatusRejection: this.rejectionsTotal.labels({ ...labels, reason: 'upstream_status' }),
        handshakeDuration: this.handshakeDuration.labels(labels),
        upstreamConnectDuration: this.upstreamConnectDuration.labels(labels),
        closes(code, initiator) {
          const label = closeCodeLabel(code);
          const k = `${label} ${initiator}`;
          let c = closes.get(k);
          if (!c) closes.set(k, (c = closesTotal.labels({ ...labels, code: label, initiator })));
          return c;
        },
      };
      this.#routeMetrics.set(key, m);
    }
    return m;
  }
}
