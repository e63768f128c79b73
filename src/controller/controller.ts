// signal → coalesce → build → publish. Bursts of changes are held off briefly (never longer than the maximum),
// the builder runs on the source's whole current state, and a snapshot is published only when its content
// hash changed. Statuses go to whoever writes them (the leader's status writer in Kubernetes mode).
import type { Builder } from '../dag/build.ts';
import type { RouteStatus } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Source } from '../sources/source.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';

export interface ControllerOptions {
  readonly source: Source;
  readonly build: Builder;
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly holdoffMs: number;
  readonly maxHoldoffMs: number;
  /** The process's clock: the hold-off runs on it. */
  readonly clock: Clock;
  readonly onStatuses?: (statuses: readonly RouteStatus[]) => void;
}

export class Controller {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  #timer: ClockTimer | undefined;
  #firstSignal = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'controller' });
  }

  /** Builds once now (the source has synced) and then on every signal. */
  start(): void {
    this.#unsubscribe = this.#o.source.onChange(() => this.#signal());
    this.rebuild();
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #signal(): void {
    const clock = this.#o.clock;
    const now = clock.now();
    if (this.#timer === undefined) this.#firstSignal = now;
    clock.clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#o.holdoffMs, this.#firstSignal + this.#o.maxHoldoffMs - now));
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.rebuild();
    }, wait);
  }

  rebuild(): void {
    const m = this.#o.metrics;
    // A measurement (wsgate_snapshot_build_duration_seconds, the log's buildMs), not a deadline: builds take well
    // under a millisecond, finer than the clock's whole milliseconds, and nothing is decided on it.
    const t0 = performance.now();
    let result;
    try {
      result = this.#o.build(this.#o.source.current());
    } catch (err) {
      // The builder refuses bad input route by route; a throw here is a bug. Keep serving the last table.
      m.snapshotBuildsTotal.inc({ result: 'failed' });
      this.#log.error({ err }, 'routing table build failed; the previous table keeps serving');
      return;
    }
    m.snapshotBuildDuration.observe((performance.now() - t0) / 1000);
    if (result.content.hash === this.#o.holder.current()?.hash) {
      m.snapshotBuildsTotal.inc({ result: 'unchanged' });
    } else {
      const s = this.#o.holder.publish(result.content);
      m.snapshotBuildsTotal.inc({ result: 'published' });
      m.snapshotGeneration.set(s.generation);
      this.#updateEndpointGauge(s);
      const rejected = result.statuses.filter((st) => st.conditions.some((c) => c.type === 'Accepted' && c.status === 'False'));
      this.#log.info({ generation: s.generation, routes: s.routes.size, endpoints: s.endpoints.size, rejected: rejected.length, buildMs: +(performance.now() - t0).toFixed(2) }, 'routing table published');
      for (const st of rejected) {
        const c = st.conditions.find((x) => x.type === 'Accepted');
        this.#log.warn({ route: st.key, reason: c?.reason, message: c?.message }, 'route not accepted');
      }
    }
    this.#o.onStatuses?.(result.statuses);
  }

  #updateEndpointGauge(s: { routes: ReadonlyMap<string, { namespace: string; name: string; rules: readonly { backends: readonly { endpoints: readonly { state: string; key: string }[] }[] }[] }> }): void {
    const g = this.#o.metrics.endpoints;
    g.reset();
    for (const r of s.routes.values()) {
      const counts = { Active: 0, NotReady: 0, Draining: 0 } as Record<string, number>;
      const seen = new Set<string>();
      for (const rule of r.rules) for (const b of rule.backends) for (const e of b.endpoints) {
        if (seen.has(e.key)) continue;
        seen.add(e.key);
        counts[e.state] = (counts[e.state] ?? 0) + 1;
      }
      for (const [state, n] of Object.entries(counts)) g.set({ namespace: r.namespace, route: r.name, state }, n);
    }
  }
}
