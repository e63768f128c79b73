// Connection budgets shared by every replica through Redis. One script per handshake checks and takes every
// rate and count that applies (and sees a revocation this replica missed); releases and lease renewals are
// written in batches, as absolute per-replica counts, so a lost or repeated write never drifts a count.
//
// This process also counts what it holds (LocalBudgets), with every count it has asked Redis for included
// before the reply: commands on one connection run in order, so a sync sent at any moment carries exactly the
// increments Redis will have applied by then.
//
// When Redis does not answer within the timeout, or is disconnected, the failure mode applies until a renewal
// succeeds again: Open checks the route's limits against this process alone, Closed refuses handshakes that
// need a cluster-wide budget with 503. Leaving the fallback first writes every count this process holds, so
// connections admitted meanwhile are counted again.
import { Errors, type WsgateError } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import type { ClusterMetrics } from './cluster-metrics.ts';
import type { ClusterKeys } from './keys.ts';
import { LocalBudgets } from './local-budgets.ts';
import { countRefusal, rateRefusal, type BudgetPlan } from './plan.ts';
import type { ScriptRunner } from './redis-link.ts';
import { ADMIT_SCRIPT, LEAVE_SCRIPT, SYNC_SCRIPT } from './scripts.ts';

export interface ClusterBudgetsOptions {
  readonly runner: ScriptRunner;
  readonly keys: ClusterKeys;
  readonly replicaId: string;
  readonly leaseTtlMs: number;
  readonly failureMode: 'Open' | 'Closed';
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: ClusterMetrics;
  /** A revocation the admit script found (another replica revoked while this one was not subscribed). */
  readonly onRevokedSeen?: () => void;
}

/** What the budgets need from the client socket: its close gives the slots back. */
export interface Holder {
  readonly destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** Keys per sync script call: bounds the script's argument list. */
const SYNC_CHUNK = 500;

export class ClusterBudgets {
  readonly local: LocalBudgets;
  readonly #o: ClusterBudgetsOptions;
  /** Keys whose count changed since the last sync (releases, unknown outcomes, fallback admissions). */
  readonly #dirty = new Set<string>();
  #flushTimer: ClockTimer | undefined;
  #stopRenew: (() => void) | undefined;
  #stopProbe: (() => void) | undefined;
  #fallback = false;
  #syncing: Promise<boolean> | undefined;
  #closed = false;

  constructor(o: ClusterBudgetsOptions) {
    this.#o = o;
    this.local = new LocalBudgets(o.clock);
  }

  /** Renews the lease every third of its TTL; the first renewal joins the cluster. */
  start(): void {
    this.#stopRenew = this.#o.clock.repeat(() => void this.sync(true), Math.max(10, Math.floor(this.#o.leaseTtlMs / 3)));
    void this.sync(true).then((ok) => {
      if (!ok) this.#enterFallback('Redis not reachable at start');
    });
  }

  get inFallback(): boolean {
    return this.#fallback;
  }

  admit(plan: BudgetPlan, socket: Holder): WsgateError | undefined | Promise<WsgateError | undefined> {
    if (this.#fallback || !this.#o.runner.ready) {
      if (!this.#fallback) this.#enterFallback('Redis disconnected');
      return this.#degraded(plan, socket);
    }
    return this.#remote(plan, socket);
  }

  async #remote(plan: BudgetPlan, socket: Holder): Promise<WsgateError | undefined> {
    for (const c of plan.counts) this.local.add(c.key, 1);
    const keys = [this.#o.keys.replicas, ...plan.revoked, ...plan.rates.map((r) => r.key), ...plan.counts.map((c) => c.key)];
    const args = [this.#o.replicaId, String(this.#o.leaseTtlMs), String(plan.revoked.length), String(plan.rates.length), String(plan.counts.length)];
    for (const r of plan.rates) args.push(String(60000 / r.perMinute), String(r.perMinute));
    for (const c of plan.counts) args.push(String(c.limit));
    let reply: unknown;
    try {
      reply = await this.#o.runner.run('admit', ADMIT_SCRIPT, keys, args);
    } catch (err) {
      // Redis may or may not have taken the counts: the next sync writes what this process really holds.
      this.#undo(plan);
      this.#enterFallback((err as Error).message);
      return this.#degraded(plan, socket);
    }
    const r = reply as [number, string | number, number?];
    if (r[0] === 0) {
      this.#hold(plan, socket);
      return undefined;
    }
    this.#undo(plan);
    if (r[0] === 1) {
      this.#o.onRevokedSeen?.();
      return Errors.revoked(String(r[1]));
    }
    if (r[0] === 2) return rateRefusal(plan.rates[Number(r[1]) - 1]!.scope, Number(r[2]));
    return countRefusal(plan.counts[Number(r[1]) - 1]!.scope);
  }

  #degraded(plan: BudgetPlan, socket: Holder): WsgateError | undefined {
    if (this.#o.failureMode === 'Closed') return Errors.limitsUnavailable();
    const err = this.local.admit(plan);
    if (err) return err;
    for (const c of plan.counts) this.#dirty.add(c.key);
    this.#hold(plan, socket);
    return undefined;
  }

  /** A count asked for but not taken; a sync may already carry it, so the key is written again. */
  #undo(plan: BudgetPlan): void {
    for (const c of plan.counts) {
      this.local.add(c.key, -1);
      this.#dirty.add(c.key);
    }
    if (plan.counts.length > 0) this.#scheduleFlush();
  }

  #hold(plan: BudgetPlan, socket: Holder): void {
    if (plan.counts.length === 0) return;
    const release = () => {
      for (const c of plan.counts) {
        this.local.add(c.key, -1);
        this.#dirty.add(c.key);
      }
      this.#scheduleFlush();
    };
    // The client may have gone while Redis answered: its 'close' has been emitted already.
    if (socket.destroyed) release();
    else socket.once('close', release);
  }

  /** Releases of one event-loop turn go out in one script call. */
  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#fallback || this.#closed) return;
    this.#flushTimer = this.#o.clock.setTimeout(() => {
      this.#flushTimer = undefined;
      void this.sync(false);
    }, 0);
  }

  /**
   * Writes this process's counts: the changed keys (renew false) or every held key with the lease (renew true).
   * Resolves true when Redis took them all. A renewal that succeeds ends a fallback.
   */
  sync(renew: boolean): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    // One sync at a time: a renewal waits for a flush in flight, so writes reach Redis in the order they were made.
    const run = async (): Promise<boolean> => {
      if (!this.#o.runner.ready) return false;
      const keys = new Set(this.#dirty);
      if (renew) for (const k of this.local.held()) keys.add(k);
      this.#dirty.clear();
      const list = [...keys];
      let fresh = false;
      try {
        for (let i = 0; i < list.length || (renew && i === 0); i += SYNC_CHUNK) {
          const chunk = list.slice(i, i + SYNC_CHUNK);
          const args = [this.#o.replicaId, String(this.#o.leaseTtlMs), renew ? '1' : '0', ...chunk.map((k) => String(this.local.count(k)))];
          const r = await this.#o.runner.run('sync', SYNC_SCRIPT, [this.#o.keys.replicas, ...chunk], args);
          if (r === 1) fresh = true;
        }
      } catch (err) {
        for (const k of list) this.#dirty.add(k);
        if (!this.#fallback) this.#enterFallback((err as Error).message);
        return false;
      }
      if (renew && fresh && list.length > 0) this.#o.log.info({ keys: list.length }, 'cluster lease re-established: counts written again');
      if (renew && this.#fallback) this.#leaveFallback(list.length);
      return true;
    };
    const next = (this.#syncing ?? Promise.resolve(true)).then(run, run);
    this.#syncing = next;
    return next;
  }

  #enterFallback(why: string): void {
    if (this.#fallback || this.#closed) return;
    this.#fallback = true;
    this.#o.metrics.fallback.set(1);
    this.#o.log.warn({ why, failureMode: this.#o.failureMode }, this.#o.failureMode === 'Open' ? 'Redis unavailable: cluster-wide limits fall back to this replica\'s own limits' : 'Redis unavailable: refusing handshakes that need cluster-wide limits');
    // Probe faster than the renewal so the fallback ends soon after Redis is back.
    this.#stopProbe = this.#o.clock.repeat(() => void this.sync(true), Math.min(1000, Math.max(10, Math.floor(this.#o.leaseTtlMs / 3))));
  }

  #leaveFallback(keys: number): void {
    this.#fallback = false;
    this.#stopProbe?.();
    this.#stopProbe = undefined;
    this.#o.metrics.fallback.set(0);
    this.#o.log.warn({ keys }, 'Redis reachable again: counts reconciled, cluster-wide limits back');
  }

  /** Leaves the cluster: the lease and this replica's counts are removed (best effort). */
  async close(): Promise<void> {
    this.#stopRenew?.();
    this.#stopProbe?.();
    this.#o.clock.clearTimeout(this.#flushTimer);
    await this.#syncing?.catch(() => undefined);
    this.#closed = true;
    if (!this.#o.runner.ready) return;
    const held = [...new Set([...this.local.held(), ...this.#dirty])];
    try {
      for (let i = 0; i < held.length || i === 0; i += SYNC_CHUNK) {
        await this.#o.runner.run('sync', LEAVE_SCRIPT, [this.#o.keys.replicas, ...held.slice(i, i + SYNC_CHUNK)], [this.#o.replicaId]);
      }
    } catch {
      // The lease expires on its own.
    }
  }
}
