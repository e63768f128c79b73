// signal → relevant? → coalesce → build → publish. A signal names the objects that changed; one that cannot
// change the table (an object no route names, or a change to fields the builder does not read: relevance.ts,
// judged against the last build's reference index) starts nothing. Bursts of relevant changes are held off
// briefly (never longer than the maximum), the builder runs on the source's whole current state, and a snapshot
// is published only when its content hash changed. Statuses go to whoever writes them (the leader's status writer in Kubernetes mode).
import type { Builder } from '../dag/build.ts';
import type { ReferenceIndex } from '../dag/references.ts';
import type { RouteStatus } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Source, SourceChange } from '../sources/source.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { changeMatters } from './relevance.ts';

export interface ControllerOptions {
  readonly source: Source;
  readonly build: Builder;
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly holdoffMs: number;
  readonly maxHoldoffMs: number;
  readonly onStatuses?: (statuses: readonly RouteStatus[]) => void;
}

export class Controller {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #firstSignal = 0;
  #unsubscribe: (() => void) | undefined;
  #lastStatuses: readonly RouteStatus[] = [];
  #references: ReferenceIndex | undefined;
  #ignored = 0;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'controller' });
  }

  /** Builds once now (the source has synced) and then on every signal. */
  start(): void {
    this.#unsubscribe = this.#o.source.onChange((change) => this.#signal(change));
    this.rebuild();
  }

  stop(): void {
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The statuses of the last build (the status writer rewrites them all when it wins leadership). */
  get statuses(): readonly RouteStatus[] {
    return this.#lastStatuses;
  }

  /** Signals that could not change the table, so started no build. */
  get ignoredSignals(): number {
    return this.#ignored;
  }

  #signal(change: SourceChange): void {
    if (!changeMatters(change, this.#references)) {
      this.#ignored++;
      return;
    }
    const now = performance.now();
    if (this.#timer === undefined) this.#firstSignal = now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#o.holdoffMs, this.#firstSignal + this.#o.maxHoldoffMs - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.rebuild();
    }, wait);
  }

  rebuild(): void {
    const m = this.#o.metrics;
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
    this.#lastStatuses = result.statuses;
    this.#references = result.references;
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
