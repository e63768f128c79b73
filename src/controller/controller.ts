// signal → relevant? → coalesce → build → publish. A signal names the objects that changed; one that cannot
// change the table (an object no route names, or a change to fields the builder does not read: relevance.ts,
// judged against the last build's reference index) starts nothing. Bursts of relevant changes are held off
// briefly (never longer than the maximum), the builder runs on the source's whole current state (here, or in the
// build thread: thread-builder.ts), and a snapshot is published only when its content hash changed. Statuses go
// to whoever writes them (the leader's status writer in Kubernetes mode).
import type { Builder, BuildResult } from '../dag/build.ts';
import type { ReferenceIndex } from '../dag/references.ts';
import { mapChanges } from '../model/chunked-map.ts';
import { listChanges } from '../model/list-changes.ts';
import type { RoutingApiStatuses, RoutingBuildResult } from '../dag/routing-apis.ts';
import type { EndpointState, RouteStatus, Snapshot } from '../model/snapshot.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Source, SourceChange } from '../sources/source.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import { changeMatters } from './relevance.ts';
import type { BuildEngine } from './thread-builder.ts';

export interface ControllerOptions {
  readonly source: Source;
  /** A builder called here, on this loop; or an engine that builds elsewhere (thread-builder.ts). */
  readonly build: Builder | BuildEngine;
  readonly holder: SnapshotHolder;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly holdoffMs: number;
  readonly maxHoldoffMs: number;
  /** The process's clock: the hold-off runs on it. */
  readonly clock: Clock;
  readonly onStatuses?: (statuses: readonly RouteStatus[]) => void;
  /** The Gateway API and Ingress statuses of each build that had those APIs in its input. */
  readonly onRoutingApiStatuses?: (statuses: RoutingApiStatuses) => void;
}

export class Controller {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  #timer: ClockTimer | undefined;
  #firstSignal = 0;
  #unsubscribe: (() => void) | undefined;
  #lastStatuses: readonly RouteStatus[] = [];
  /** Keys of the routes the last build refused (Accepted=False). */
  readonly #rejected = new Set<string>();
  #references: ReferenceIndex | undefined;
  #ignored = 0;
  /** An engine's build is running; signals meanwhile are judged against its result's references. */
  #building: Promise<void> | undefined;
  #deferred: SourceChange[] = [];
  #again = false;
  #stopped = false;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'controller' });
  }

  /** Builds once now (the source has synced) and then on every signal; resolves when the first build is done. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#o.source.onChange((change) => this.#signal(change));
    this.rebuild();
    await this.#building;
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#o.clock.clearTimeout(this.#timer);
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
    if (typeof this.#o.build !== 'function') this.#o.build.note(change);
    if (this.#building) {
      this.#deferred.push(change);
      return;
    }
    if (!changeMatters(change, this.#references)) {
      this.#ignored++;
      return;
    }
    this.#schedule();
  }

  #schedule(): void {
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

  /** Builds now: here when the builder is a function, otherwise through the engine (one build at a time). */
  rebuild(): void {
    // A measurement (wsgate_snapshot_build_duration_seconds, the log's buildMs), not a deadline: builds take well
    // under a millisecond, finer than the clock's whole milliseconds, and nothing is decided on it.
    const build = this.#o.build;
    const t0 = performance.now();
    if (typeof build === 'function') {
      let result;
      try {
        result = build(this.#o.source.current());
      } catch (err) {
        this.#failed(err);
        return;
      }
      this.#adopt(result, t0);
      return;
    }
    if (this.#building) {
      this.#again = true;
      return;
    }
    this.#building = build.build(this.#o.source).then(
      (result) => {
        if (!this.#stopped) this.#adopt(result, t0);
      },
      (err: unknown) => {
        if (!this.#stopped) this.#failed(err);
      },
    ).finally(() => {
      this.#building = undefined;
      const deferred = this.#deferred;
      this.#deferred = [];
      if (this.#stopped) return;
      if (this.#again) {
        // The next build reads everything as it is now, the deferred changes included.
        this.#again = false;
        this.rebuild();
        return;
      }
      const matters = deferred.filter((c) => changeMatters(c, this.#references)).length;
      this.#ignored += deferred.length - matters;
      if (matters > 0) this.#schedule();
    });
  }

  #failed(err: unknown): void {
    // The builder refuses bad input route by route; a throw here is a bug. Keep serving the last table.
    this.#o.metrics.snapshotBuildsTotal.inc({ result: 'failed' });
    this.#log.error({ err }, 'routing table build failed; the previous table keeps serving');
  }

  #adopt(result: BuildResult, t0: number): void {
    const m = this.#o.metrics;
    m.snapshotBuildDuration.observe((performance.now() - t0) / 1000);
    this.#noteRejections(result.statuses, this.#lastStatuses);
    this.#lastStatuses = result.statuses;
    this.#references = result.references;
    if (result.content.hash === this.#o.holder.current()?.hash) {
      m.snapshotBuildsTotal.inc({ result: 'unchanged' });
    } else {
      const prev = this.#o.holder.current();
      const s = this.#o.holder.publish(result.content);
      m.snapshotBuildsTotal.inc({ result: 'published' });
      m.snapshotGeneration.set(s.generation);
      this.#updateEndpointGauge(s, prev);
      // builder: where the build ran, the build thread or this loop (--build-thread=false).
      const builder = typeof this.#o.build === 'function' ? 'loop' : 'thread';
      this.#log.info({ generation: s.generation, routes: s.routes.size, endpoints: s.endpoints.size, rejected: this.#rejected.size, buildMs: +(performance.now() - t0).toFixed(2), builder }, 'routing table published');
    }
    this.#o.onStatuses?.(result.statuses);
    const routing = (result as RoutingBuildResult).routingApis;
    if (routing) this.#o.onRoutingApiStatuses?.(routing);
  }

  /** Keeps the set of refused routes from the statuses that changed (the build thread shares the others, so
   *  this costs what changed, not a walk of 5,000 statuses per table on this loop), and logs a refusal once:
   *  when it is new, or its reason or message changed. */
  #noteRejections(next: readonly RouteStatus[], prev: readonly RouteStatus[]): void {
    let changed: readonly { readonly now: RouteStatus; readonly before?: RouteStatus | undefined }[] | undefined = listChanges(next, prev, (st) => st.key);
    if (changed === undefined) {
      const before = new Map(prev.map((st) => [st.key as string, st]));
      changed = next.filter((st) => before.get(st.key) !== st).map((now) => ({ now, before: before.get(now.key) }));
      const keys = new Set<string>(next.map((st) => st.key));
      for (const k of this.#rejected) if (!keys.has(k)) this.#rejected.delete(k);
    }
    const accepted = (st: RouteStatus | undefined) => st?.conditions.find((x) => x.type === 'Accepted');
    for (const { now, before } of changed) {
      const c = accepted(now);
      if (c?.status !== 'False') {
        this.#rejected.delete(now.key);
        continue;
      }
      this.#rejected.add(now.key);
      const b = accepted(before);
      if (b?.status === 'False' && b.reason === c.reason && b.message === c.message) continue;
      this.#log.warn({ route: now.key, reason: c.reason, message: c.message }, 'route not accepted');
    }
  }

  /** Only routes whose object changed are counted again: a snapshot from the build thread shares the routes that
   *  did not change (and the chunks of its route map that hold them, which mapChanges skips whole), and
   *  recounting 5,000 routes' endpoints costs tens of milliseconds on this loop. */
  #updateEndpointGauge(next: Snapshot, prev: Snapshot | undefined): void {
    const g = this.#o.metrics.endpoints;
    if (!prev) g.reset();
    for (const { now: r, before } of mapChanges(next.routes, prev?.routes)) {
      if (!r) {
        for (const state of ['Active', 'NotReady', 'Draining']) g.remove({ namespace: before!.namespace, route: before!.name, state });
        continue;
      }
      const counts: Record<EndpointState, number> = { Active: 0, NotReady: 0, Draining: 0 };
      const seen = new Set<string>();
      for (const rule of r.rules) for (const b of rule.backends) for (const e of b.endpoints) {
        if (seen.has(e.key)) continue;
        seen.add(e.key);
        counts[e.state]++;
      }
      // A route always has its Active series (an alert on none stays possible); NotReady and Draining only while
      // there are some, which keeps the series (and every scrape's text) near one per route.
      for (const [state, n] of Object.entries(counts)) {
        const labels = { namespace: r.namespace, route: r.name, state };
        if (n > 0 || state === 'Active') g.set(labels, n);
        else g.remove(labels);
      }
    }
  }
}
