// This process's view of the budgets: the connections it holds per count key (always kept, Redis or not, so
// a fallback to local limits and the reconciliation after an outage both start from the truth), and token
// buckets for the rates, used when Redis is off or unreachable.
import type { Clock } from '../util/clock.ts';
import { TokenBucket } from '../policy/token-bucket.ts';
import type { WsgateError } from '../errors.ts';
import { countRefusal, rateRefusal, type BudgetPlan } from './plan.ts';

export class LocalBudgets {
  readonly #clock: Clock;
  readonly #maxBuckets: number;
  readonly #counts = new Map<string, number>();
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(clock: Clock, maxBuckets = 100_000) {
    this.#clock = clock;
    this.#maxBuckets = maxBuckets;
  }

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Every key this process holds connections in. */
  held(): IterableIterator<string> {
    return this.#counts.keys();
  }

  add(key: string, d: number): void {
    const v = (this.#counts.get(key) ?? 0) + d;
    if (v <= 0) this.#counts.delete(key);
    else this.#counts.set(key, v);
  }

  /** Checks the plan against this process alone; takes the rate tokens (when every rate passes) and, when
   *  everything has room, the counts. */
  admit(plan: BudgetPlan): WsgateError | undefined {
    const now = this.#clock.now();
    const buckets = plan.rates.map((r) => this.#bucket(r.key, r.perMinute, now));
    for (let i = 0; i < buckets.length; i++) {
      if (buckets[i]!.waitMs(1, now) > 0) return rateRefusal(plan.rates[i]!.scope, buckets[i]!.waitMs(1, now));
    }
    for (const b of buckets) b.take(1, now);
    for (const c of plan.counts) if (this.count(c.key) >= c.limit) return countRefusal(c.scope);
    for (const c of plan.counts) this.add(c.key, 1);
    return undefined;
  }

  #bucket(key: string, perMinute: number, now: number): TokenBucket {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#maxBuckets) {
        for (const [k, old] of this.#buckets) if (old.full(now)) this.#buckets.delete(k);
        // Still full of active keys: forget the oldest, which at worst gives one of them a fresh minute.
        if (this.#buckets.size >= this.#maxBuckets) this.#buckets.delete(this.#buckets.keys().next().value!);
      }
      b = new TokenBucket(perMinute, perMinute / 60, now);
      this.#buckets.set(key, b);
    }
    return b;
  }
}
