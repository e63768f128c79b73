// Composes passive ejection, active checks and circuit breakers into the proxy's hooks: one admission check
// that vetoes endpoints through ctx.pick.usable (and refuses at once with 503 circuit_open when every backend
// of the rule is open), plus the attempt/result pair the proxy reports each upstream connect through.
// Groups — one backend as seen by one route — are keyed `${route.key}|${backend.id}`.
import { Errors } from '../errors.ts';
import { mapChanges, type MapChange } from '../model/chunked-map.ts';
import type { Backend, BreakerPolicy, Endpoint, ObjectKey, Route, Rule, Snapshot } from '../model/snapshot.ts';
import type { Pick as EndpointPick } from '../proxy/balance/balancer.ts';
import type { AdmissionCheck, HandshakeContext, ProxyHooks, UpstreamAttemptInfo } from '../proxy/hooks.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ActiveHealthChecker, type Transition } from './active.ts';
import { CircuitBreakers, type BreakerAttempt, type BreakerConfig, type BreakerState } from './breaker.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { OutlierDetector, type EjectionEvent } from './outlier.ts';
import { createProber, type Prober } from './probes.ts';

export interface HealthOptions {
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly metrics?: Metrics;
  readonly clock?: Clock;
  readonly prober?: Prober;
  /** Open relayed connections per endpoint key (the balancer state the composition root builds and gives the
   *  proxy too), for circuitBreaker.maxConnections. */
  readonly connections?: (endpointKey: string) => number;
  /** circuitBreaker.maxPendingHandshakes of a route that sets none (config: a share of the global handshake
   *  budget, so one hung backend cannot hold all of it). */
  readonly defaultMaxPendingHandshakes?: number;
}

interface GroupInfo {
  readonly namespace: string;
  readonly route: string;
  readonly backend: string;
}

export class Health {
  readonly outlier: OutlierDetector;
  readonly breakers: CircuitBreakers;
  readonly active: ActiveHealthChecker;
  readonly #o: HealthOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #attempts = new WeakMap<HandshakeContext, BreakerAttempt>();
  readonly #ruleIndex = new WeakMap<Rule, Map<string, Backend>>();
  #groups = new Map<string, GroupInfo>();
  /** The snapshot groups, breakers and probes were last aligned with. */
  #synced: Snapshot | undefined;
  readonly #perRoute = new WeakMap<Route, readonly (readonly [string, GroupInfo, ReadonlySet<string>])[]>();
  #unsubscribe: (() => void) | undefined;

  constructor(o: HealthOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'health' });
    this.#clock = o.clock ?? systemClock();
    this.outlier = new OutlierDetector({ clock: this.#clock, onEject: (e) => this.#onEject(e) });
    this.breakers = new CircuitBreakers({ clock: this.#clock, onChange: (g, s) => this.#onBreaker(g, s) });
    this.active = new ActiveHealthChecker({
      clock: this.#clock,
      prober: o.prober ?? createProber(this.#clock),
      onTransition: (t) => this.#onProbe(t),
    });
  }

  /** Follows the holder: probes and state track every published snapshot. */
  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#o.holder.onSwap((next, prev) => this.sync(next, prev));
    const cur = this.#o.holder.current();
    if (cur) this.sync(cur);
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#synced = undefined;
    this.active.stop();
  }

  /** Aligns groups, breakers and probes with a snapshot. Given the snapshot it follows (the last one synced),
   *  only the routes that differ between the two are looked at: a swap at 5,000 routes costs the routes a change
   *  touched, not a walk over all of them. */
  sync(snapshot: Snapshot, prev?: Snapshot): void {
    if (prev && prev === this.#synced) this.#syncChanges(mapChanges(snapshot.routes, prev.routes));
    else this.#syncAll(snapshot);
    this.#synced = snapshot;
  }

  #syncAll(snapshot: Snapshot): void {
    const groups = new Map<string, GroupInfo>();
    const members = new Map<string, ReadonlySet<string>>();
    for (const route of snapshot.routes.values()) {
      for (const [g, info, keys] of this.#routeGroups(route)) {
        groups.set(g, info);
        members.set(g, keys);
      }
    }
    this.#groups = groups;
    this.outlier.retain(members);
    this.breakers.retain(new Set(groups.keys()));
    this.active.sync(snapshot);
  }

  /** Groups are per route, so a changed route's old groups go and its new ones come, and nothing else moves. */
  #syncChanges(changes: readonly MapChange<ObjectKey, Route>[]): void {
    const touched = new Map<string, ReadonlySet<string> | undefined>();
    for (const { before } of changes) {
      if (!before) continue;
      for (const [g] of this.#routeGroups(before)) {
        this.#groups.delete(g);
        touched.set(g, undefined);
      }
    }
    for (const { now } of changes) {
      if (!now) continue;
      for (const [g, info, keys] of this.#routeGroups(now)) {
        this.#groups.set(g, info);
        touched.set(g, keys);
      }
    }
    this.outlier.retainChanged(touched);
    this.breakers.forget([...touched].filter(([, keys]) => keys === undefined).map(([g]) => g));
    this.active.syncChanges(changes);
  }

  /** A route's groups (they are per route) and each one's endpoint keys, kept per Route object: a snapshot shares
   *  the routes that did not change, so a swap recounts only those that did, not every endpoint of the table. */
  #routeGroups(route: Route): readonly (readonly [string, GroupInfo, ReadonlySet<string>])[] {
    const known = this.#perRoute.get(route);
    if (known) return known;
    const byGroup = new Map<string, { info: GroupInfo; keys: Set<string> }>();
    for (const rule of route.rules)
      for (const b of rule.backends) {
        const g = groupKey(route, b);
        let m = byGroup.get(g);
        if (!m) byGroup.set(g, (m = { info: { namespace: route.namespace, route: route.name, backend: b.id }, keys: new Set() }));
        for (const e of b.endpoints) m.keys.add(e.key);
      }
    const out = [...byGroup].map(([g, m]) => [g, m.info, m.keys] as const);
    this.#perRoute.set(route, out);
    return out;
  }

  /** The proxy hooks this module fills; main merges them with the others'. */
  hooks(): { admission: AdmissionCheck; upstreamAttempt: NonNullable<ProxyHooks['upstreamAttempt']>; upstreamResult: NonNullable<ProxyHooks['upstreamResult']> } {
    return {
      admission: this.admission,
      upstreamAttempt: (ctx, pick) => this.#attempt(ctx, pick),
      upstreamResult: (endpoint, ok, info) => this.#result(endpoint, ok, info),
    };
  }

  /** Whether an endpoint of this backend may take a new connection for this route now. */
  usable(route: Route, backend: Backend, e: Endpoint, connections?: Map<string, number>): boolean {
    const g = groupKey(route, backend);
    if (this.outlier.ejected(g, e.key)) return false;
    if (!this.active.healthy(route.key, e.key)) return false;
    return this.#admits(route, backend, connections);
  }

  readonly admission: AdmissionCheck = (ctx) => {
    const route = ctx.match.route;
    const rule = ctx.match.rule;
    const index = this.#index(rule);
    // Connection counts are summed once per backend per handshake, not once per candidate.
    const connections = new Map<string, number>();
    const live = rule.backends.filter((b) => b.resolved && b.weight > 0 && b.endpoints.length > 0);
    if (live.length > 0 && live.every((b) => !this.#admits(route, b, connections))) {
      const wait = Math.max(...live.map((b) => this.#retryAfter(route, b)));
      return Errors.circuitOpen(`circuit open for ${live.map((b) => b.id).join(', ')}`, { headers: { 'Retry-After': String(wait) } });
    }
    const prev = ctx.pick.usable;
    ctx.pick = {
      ...ctx.pick,
      usable: (e) => {
        if (prev && !prev(e)) return false;
        const b = index.get(e.key);
        return b === undefined || this.usable(route, b, e, connections);
      },
    };
    return undefined;
  };

  #admits(route: Route, b: Backend, connections?: Map<string, number>): boolean {
    const cfg = this.#breakerConfig(route);
    if (!cfg) return true;
    let n = 0;
    if (cfg.maxConnections !== undefined) {
      const cached = connections?.get(b.id);
      if (cached !== undefined) n = cached;
      else {
        const count = this.#o.connections;
        if (count) for (const e of b.endpoints) n += count(e.key);
        connections?.set(b.id, n);
      }
    }
    return this.breakers.admits(groupKey(route, b), b.id, n, cfg);
  }

  #breakerConfig(route: Route): BreakerConfig | undefined {
    const cfg = route.breaker;
    const pending = this.#o.defaultMaxPendingHandshakes;
    if (cfg.maxPendingHandshakes !== undefined || pending === undefined) return configured(cfg) ? cfg : undefined;
    return { ...cfg, maxPendingHandshakes: pending };
  }

  #retryAfter(route: Route, b: Backend): number {
    if (this.breakers.state(groupKey(route, b)) !== 'open') return 1;
    return Math.max(1, Math.ceil(route.breaker.openMs / 1000));
  }

  #index(rule: Rule): Map<string, Backend> {
    let m = this.#ruleIndex.get(rule);
    if (!m) {
      m = new Map();
      for (const b of rule.backends) for (const e of b.endpoints) if (!m.has(e.key)) m.set(e.key, b);
      this.#ruleIndex.set(rule, m);
    }
    return m;
  }

  #attempt(ctx: HandshakeContext, pick: EndpointPick): void {
    this.#attempts.set(ctx, this.breakers.started(groupKey(ctx.match.route, pick.backend), pick.backend.id));
  }

  #result(endpoint: Endpoint, ok: boolean, info: UpstreamAttemptInfo | undefined): void {
    if (!info) return;
    const route = info.ctx.match.route;
    const g = groupKey(route, info.backend);
    const token = this.#attempts.get(info.ctx);
    this.#attempts.delete(info.ctx);
    if (token) this.breakers.finished(token, info.aborted ? 'aborted' : ok ? 'ok' : 'failed', route.breaker);
    // A client that left mid-handshake says nothing about the endpoint.
    if (info.aborted) return;
    const ocfg = route.outlier;
    if (ocfg) this.outlier.report(g, endpoint.key, ok, info.backend.endpoints.map((e) => e.key), ocfg);
  }

  #onEject(e: EjectionEvent): void {
    const info = this.#groups.get(e.group);
    this.#log.warn({ group: e.group, endpoint: e.endpoint, ejectedForMs: e.durationMs, streak: e.streak }, 'endpoint ejected after consecutive failures');
    if (info) this.#o.metrics?.endpointEjectionsTotal.inc({ ...info });
  }

  #onBreaker(group: string, state: BreakerState): void {
    const info = this.#groups.get(group);
    const log = state === 'open' ? this.#log.warn.bind(this.#log) : this.#log.info.bind(this.#log);
    log({ group, state }, `circuit ${state}`);
    if (info) this.#o.metrics?.circuitBreakerState.set({ ...info }, stateValue(state));
  }

  #onProbe(t: Transition): void {
    const log = t.state === 'unhealthy' ? this.#log.warn.bind(this.#log) : this.#log.info.bind(this.#log);
    log({ endpoint: t.endpoint, address: t.address, state: t.state, detail: t.result.detail, routes: t.routes }, `health check: endpoint ${t.state}`);
    for (const r of t.routes) {
      const [namespace, name] = r.split('/');
      this.#o.metrics?.healthCheckTransitionsTotal.inc({ namespace, route: name, state: t.state });
    }
  }

  /** Scrape time (the composition root registers it with Metrics#onScrape): gauges of time-driven state
   *  (ejections expire and breakers half-open without an event). */
  collect(): void {
    const m = this.#o.metrics;
    if (!m) return;
    m.endpointsEjected.reset();
    m.circuitBreakerState.reset();
    for (const [g, info] of this.#groups) {
      const n = this.outlier.ejectedCount(g);
      if (n > 0) m.endpointsEjected.set({ ...info }, n);
      const s = this.breakers.state(g);
      if (s !== 'closed') m.circuitBreakerState.set({ ...info }, stateValue(s));
    }
  }
}

export function groupKey(route: Route, backend: Backend): string {
  return `${route.key}|${backend.id}`;
}

function stateValue(s: BreakerState): number {
  return s === 'closed' ? 0 : s === 'open' ? 1 : 2;
}

/** Whether a route's circuitBreaker sets any limit (without one, only the process's pending default applies). */
function configured(b: BreakerPolicy): boolean {
  return b.maxPendingHandshakes !== undefined || b.maxConnections !== undefined || b.consecutiveFailures !== undefined;
}
