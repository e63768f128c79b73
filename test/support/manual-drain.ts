// What the rollout tests share to check a drain's pacing without reading the wall clock: the drain scheduler's
// clock on a ManualClock (time moves only in advance()) with a seeded random, and a walk through the window a
// tenth at a time that counts the closes each tenth delivered to the clients.
import type { DrainClock } from '../../src/proxy/drain.ts';
import type { Metrics } from '../../src/telemetry/metrics.ts';
import { waitUntil } from './fake-apiserver/index.ts';
import { metricValue } from './harness.ts';
import type { ManualClock } from './manual-clock.ts';

export function manualDrainClock(clock: ManualClock, seed = 7): DrainClock {
  let s = seed;
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => ({ id: clock.setTimeout(fn, ms), unref: () => undefined }),
    clearTimeout: (t) => clock.clearTimeout((t as { id: unknown }).id),
    random: () => (s = (s * 16807) % 2147483647) / 2147483647,
  };
}

/** The closes the proxy has begun for a route's drains (1012, paced or at once). */
export function drainCloses(metrics: Metrics, route: string): Promise<number> {
  return metricValue(metrics, 'wsgate_drain_closes_total', { namespace: 'default', route });
}

/**
 * Advances the clock `tenths` tenths of the window; after each, waits until every close the proxy began in it
 * has reached its client (closed() counts the clients that saw their close). Returns the closes per tenth.
 */
export async function advanceByTenths(o: {
  clock: ManualClock;
  windowSeconds: number;
  tenths: number;
  metrics: Metrics;
  route: string;
  closed: () => number;
}): Promise<number[]> {
  const per: number[] = [];
  const base = await drainCloses(o.metrics, o.route);
  const seen0 = o.closed();
  let before = base;
  for (let i = 0; i < o.tenths; i++) {
    o.clock.advance((o.windowSeconds * 1000) / 10);
    const fired = await drainCloses(o.metrics, o.route);
    per.push(fired - before);
    before = fired;
    await waitUntil(() => o.closed() - seen0 >= fired - base, `the ${fired - base} closes begun by tenth ${i + 1} reached their clients`, 10_000);
  }
  return per;
}

/** Stratified pacing puts one close in each slot of window/n: a tenth of the window holds n/10 of them, give or
 *  take the slots that straddle its two ends. */
export function evenlyPaced(per: readonly number[], n: number): boolean {
  return per.every((k) => k >= Math.floor(n / 10) - 1 && k <= Math.ceil(n / 10) + 1);
}
