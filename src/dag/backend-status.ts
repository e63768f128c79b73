// Endpoint counts for the route status, as data: per backendRef, per route, and the rules that have no ready
// endpoint (Programmed says so). The one place that decides which count an endpoint state adds to.
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { BackendStatus, EndpointCounts, EndpointState, Rule } from '../model/snapshot.ts';

/** A new EndpointState fails to compile until it is given a count here. */
const countOf: Readonly<Record<EndpointState, keyof EndpointCounts>> = {
  Active: 'ready',
  Draining: 'draining',
  NotReady: 'notReady',
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One entry per backendRef, in spec order (rule, then backendRef), so the list is sorted as built. */
export function backendStatuses(spec: WebSocketRouteSpec, rules: readonly Rule[]): BackendStatus[] {
  return rules.flatMap((rule) =>
    rule.backends.map((b, j): BackendStatus => {
      const ref = spec.rules[rule.index].backendRefs![j];
      const counts: Mutable<EndpointCounts> = { ready: 0, draining: 0 };
      for (const e of b.endpoints) {
        const k = countOf[e.state];
        counts[k] = (counts[k] ?? 0) + 1;
      }
      const id = ref.endpoints ? { kind: 'Static' as const } : { kind: 'Service' as const, name: ref.name, port: ref.port };
      return Object.freeze({ rule: rule.index, backendRef: j, ...id, ...counts });
    }),
  );
}

/** Distinct ready addresses (host:port) of the route: two rules, or two Services, on one pod count it once. */
export function readyEndpoints(rules: readonly Rule[]): number {
  const addresses = new Set<string>();
  for (const r of rules) for (const b of r.backends) for (const e of b.endpoints) if (countOf[e.state] === 'ready') addresses.add(e.address);
  return addresses.size;
}

export interface RuleWithoutReady {
  readonly rule: number;
  /** Draining endpoints take the rule's new connections; without them new connections get 503. */
  readonly draining: boolean;
}

/**
 * Rules that could take traffic (a resolved backend with weight > 0) but have no ready endpoint on any such
 * backend. Rules with no resolved backend are left to ResolvedRefs.
 */
export function rulesWithoutReady(rules: readonly Rule[]): RuleWithoutReady[] {
  const out: RuleWithoutReady[] = [];
  for (const r of rules) {
    if (!r.backends.some((b) => b.resolved)) continue;
    const serving = r.backends.filter((b) => b.resolved && b.weight > 0);
    const states = serving.flatMap((b) => b.endpoints.map((e) => countOf[e.state]));
    if (!states.includes('ready')) out.push({ rule: r.index, draining: states.includes('draining') });
  }
  return out;
}
