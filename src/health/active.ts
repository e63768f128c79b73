// Active health checks: per route, a probe per published endpoint, run every interval; healthy/unhealthy
// thresholds turn results into a state. The state only ever takes endpoints away: an endpoint gets traffic when
// it is published (ready in its EndpointSlice) AND not failed by its probe.
// A new endpoint is "pending" until its first probe: it is usable meanwhile (readiness already vouched for it)
// and that first result alone decides its state; the thresholds govern every later change.
// Probes follow snapshot swaps: new endpoints start being probed at once, removed ones stop, and routes with
// identical check settings share one probe per endpoint.
import type { MapChange } from '../model/chunked-map.ts';
import type { Endpoint, Route, Snapshot } from '../model/snapshot.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import type { ProbeSpec, ProbeTarget, Prober, ProbeResult } from './probes.ts';

export interface CheckSettings {
  readonly probe: ProbeSpec;
  readonly intervalMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly tls?: { readonly servername?: string };
}

export type ProbeState = 'pending' | 'healthy' | 'unhealthy';

export interface Transition {
  readonly endpoint: string;
  readonly address: string;
  readonly state: 'healthy' | 'unhealthy';
  readonly routes: readonly string[];
  readonly result: ProbeResult;
}

interface Probe {
  readonly key: string;
  readonly endpoint: string;
  readonly target: ProbeTarget;
  readonly settings: CheckSettings;
  routes: Set<string>;
  state: ProbeState;
  successes: number;
  failures: number;
  timer: ClockTimer | undefined;
  running: boolean;
  stopped: boolean;
}

export class ActiveHealthChecker {
  readonly #clock: Clock;
  readonly #prober: Prober;
  readonly #onTransition: (t: Transition) => void;
  readonly #probes = new Map<string, Probe>();
  /** route key → settings signature, so a lookup is two map reads. */
  #routeSig = new Map<string, string>();

  constructor(o: { clock: Clock; prober: Prober; onTransition?: (t: Transition) => void }) {
    this.#clock = o.clock;
    this.#prober = o.prober;
    this.#onTransition = o.onTransition ?? (() => {});
  }

  /** Aligns the probes with a snapshot. */
  sync(snapshot: Snapshot): void {
    const want = new Map<string, { endpoint: string; target: ProbeTarget; settings: CheckSettings; routes: Set<string> }>();
    const routeSig = new Map<string, string>();
    for (const route of snapshot.routes.values()) {
      const settings = checkSettings(route);
      if (!settings) continue;
      const sig = JSON.stringify(settings);
      routeSig.set(route.key, sig);
      for (const rule of route.rules)
        for (const b of rule.backends)
          for (const e of b.endpoints) {
            const key = `${sig}|${e.key}`;
            let w = want.get(key);
            if (!w) {
              const target: ProbeTarget = { host: e.host, port: e.port, authority: e.address, ...(settings.tls ? { tls: settings.tls } : {}) };
              want.set(key, (w = { endpoint: e.key, target, settings, routes: new Set() }));
            }
            w.routes.add(route.key);
          }
    }
    for (const [key, p] of this.#probes) {
      if (want.has(key)) continue;
      this.#stop(p);
      this.#probes.delete(key);
    }
    for (const [key, w] of want) {
      const p = this.#probes.get(key);
      if (p) {
        p.routes = w.routes;
        continue;
      }
      const probe: Probe = { key, ...w, state: 'pending', successes: 0, failures: 0, timer: undefined, running: false, stopped: false };
      this.#probes.set(key, probe);
      this.#run(probe);
    }
    this.#routeSig = routeSig;
  }

  /** Aligns the probes with a snapshot that differs from the last one aligned with by these routes only (the
   *  swap's mapChanges): the same probes as sync() of the whole snapshot, at the cost of the routes changed.
   *  Every route's new probes are taken first and old ones let go after, so that a probe that stays wanted (an
   *  endpoint moving between routes with the same settings) keeps its state, as in a whole sync. */
  syncChanges(changes: readonly MapChange<string, Route>[]): void {
    for (const { key, now } of changes) {
      const settings = now && checkSettings(now);
      if (!settings) continue;
      const sig = JSON.stringify(settings);
      for (const e of endpointsOf(now)) {
        const probeKey = `${sig}|${e.key}`;
        let p = this.#probes.get(probeKey);
        if (!p) {
          const target: ProbeTarget = { host: e.host, port: e.port, authority: e.address, ...(settings.tls ? { tls: settings.tls } : {}) };
          p = { key: probeKey, endpoint: e.key, target, settings, routes: new Set(), state: 'pending', successes: 0, failures: 0, timer: undefined, running: false, stopped: false };
          this.#probes.set(probeKey, p);
          this.#run(p);
        }
        p.routes.add(key);
      }
    }
    for (const { key, now, before } of changes) {
      const oldSig = this.#routeSig.get(key);
      const settings = now && checkSettings(now);
      const sig = settings && JSON.stringify(settings);
      if (sig === undefined) this.#routeSig.delete(key);
      else this.#routeSig.set(key, sig);
      if (oldSig === undefined || !before) continue;
      const kept = new Set(sig === undefined ? [] : [...endpointsOf(now!)].map((e) => `${sig}|${e.key}`));
      for (const e of endpointsOf(before)) {
        const probeKey = `${oldSig}|${e.key}`;
        const p = this.#probes.get(probeKey);
        if (!p || kept.has(probeKey)) continue;
        p.routes.delete(key);
        if (p.routes.size > 0) continue;
        this.#stop(p);
        this.#probes.delete(probeKey);
      }
    }
  }

  /** False only when the route checks this endpoint and its probe says unhealthy. */
  healthy(routeKey: string, endpointKey: string): boolean {
    const sig = this.#routeSig.get(routeKey);
    if (sig === undefined) return true;
    return this.#probes.get(`${sig}|${endpointKey}`)?.state !== 'unhealthy';
  }

  state(routeKey: string, endpointKey: string): ProbeState | undefined {
    const sig = this.#routeSig.get(routeKey);
    return sig === undefined ? undefined : this.#probes.get(`${sig}|${endpointKey}`)?.state;
  }

  get size(): number {
    return this.#probes.size;
  }

  /** Probes currently waiting for an answer (tests, debug). */
  get running(): number {
    let n = 0;
    for (const p of this.#probes.values()) if (p.running) n++;
    return n;
  }

  stop(): void {
    for (const p of this.#probes.values()) this.#stop(p);
    this.#probes.clear();
    this.#routeSig.clear();
  }

  #stop(p: Probe): void {
    p.stopped = true;
    if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
    p.timer = undefined;
  }

  #run(p: Probe): void {
    p.timer = undefined;
    if (p.stopped) return;
    const started = this.#clock.now();
    p.running = true;
    this.#prober(p.target, p.settings.probe).then(
      (r) => this.#result(p, r, started),
      (err: unknown) => this.#result(p, { ok: false, detail: String(err) }, started),
    );
  }

  #result(p: Probe, r: ProbeResult, started: number): void {
    p.running = false;
    if (p.stopped) return;
    let next: ProbeState = p.state;
    if (r.ok) {
      p.successes++;
      p.failures = 0;
      if (p.state === 'pending' || (p.state === 'unhealthy' && p.successes >= p.settings.healthyThreshold)) next = 'healthy';
    } else {
      p.failures++;
      p.successes = 0;
      if (p.state === 'pending' || (p.state === 'healthy' && p.failures >= p.settings.unhealthyThreshold)) next = 'unhealthy';
    }
    if (next !== p.state) {
      const from = p.state;
      p.state = next;
      p.successes = 0;
      p.failures = 0;
      // A pending endpoint found healthy is not news; every other change is.
      if (!(from === 'pending' && next === 'healthy'))
        this.#onTransition({ endpoint: p.endpoint, address: p.target.authority, state: next as 'healthy' | 'unhealthy', routes: [...p.routes], result: r });
    }
    const wait = Math.max(0, p.settings.intervalMs - (this.#clock.now() - started));
    p.timer = this.#clock.setTimeout(() => this.#run(p), wait);
  }
}

function* endpointsOf(route: Route): Generator<Endpoint> {
  for (const rule of route.rules) for (const b of rule.backends) yield* b.endpoints;
}

/** The probe settings of a route's healthCheck; undefined when it has none. */
export function checkSettings(route: Pick<Route, 'healthCheck'>): CheckSettings | undefined {
  const hc = route.healthCheck;
  if (!hc) return undefined;
  return {
    probe: { type: hc.type, path: hc.path, timeoutMs: hc.timeoutMs },
    intervalMs: hc.intervalMs,
    healthyThreshold: hc.healthyThreshold,
    unhealthyThreshold: hc.unhealthyThreshold,
    ...(hc.tls ? { tls: hc.tls.serverName !== undefined ? { servername: hc.tls.serverName } : {} } : {}),
  };
}
