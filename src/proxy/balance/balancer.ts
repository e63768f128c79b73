// Endpoint choice for one rule: a backend by weight, then an endpoint by the route's policy. Active endpoints
// take new connections; Draining ones only when the backend has no Active endpoint left (as kube-proxy does);
// NotReady ones never.
import { Errors, type WsgateError } from '../../errors.ts';
import type { Backend, Endpoint, Rule } from '../../model/snapshot.ts';

export type Policy = 'LeastConnections' | 'RoundRobin' | 'ConsistentHash';

/** Mutable balancing state owned by the proxy: open connections per endpoint key, round-robin cursors. */
export class BalancerState {
  readonly active = new Map<string, number>();
  readonly #cursor = new Map<string, number>();

  acquire(key: string): void {
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const n = (this.active.get(key) ?? 0) - 1;
    if (n > 0) this.active.set(key, n);
    else this.active.delete(key);
  }

  next(id: string): number {
    const n = this.#cursor.get(id) ?? 0;
    this.#cursor.set(id, n + 1 === Number.MAX_SAFE_INTEGER ? 0 : n + 1);
    return n;
  }
}

export interface PickOptions {
  /** Endpoint keys already tried for this handshake. */
  readonly exclude?: ReadonlySet<string>;
  /** Health (passive ejection, active checks, breakers) may veto an endpoint. */
  readonly usable?: (e: Endpoint) => boolean;
  /** Affinity (session key, cookie) or ConsistentHash: chooses among the candidates, for any policy; undefined
   *  (no key on this request) leaves the choice to the policy (ConsistentHash without a key: LeastConnections). */
  readonly hashPick?: (candidates: readonly Endpoint[], backend: Backend) => Endpoint | undefined;
  readonly random?: () => number;
}

export interface Pick {
  readonly backend: Backend;
  readonly endpoint: Endpoint;
}

export function pickEndpoint(rule: Rule, policy: Policy, state: BalancerState, opts: PickOptions = {}): Pick | WsgateError {
  const resolved = rule.backends.filter((b) => b.resolved && b.weight > 0);
  if (resolved.length === 0) return Errors.backendNotFound();
  const withCandidates = resolved
    .map((backend) => ({ backend, candidates: candidates(backend, opts) }))
    .filter((x) => x.candidates.length > 0);
  if (withCandidates.length === 0) return Errors.noEndpoint();
  const chosen = weighted(withCandidates, opts.random ?? Math.random);
  const endpoint = opts.hashPick?.(chosen.candidates, chosen.backend) ?? policyPick(chosen.candidates, policy, state, chosen.backend.id);
  return { backend: chosen.backend, endpoint };
}

/** The policy's choice among non-empty candidates, without a key (affinity uses it for a fresh pick too). */
export function policyPick(candidates: readonly Endpoint[], policy: Policy, state: BalancerState, backendId: string): Endpoint {
  return policy === 'RoundRobin' ? candidates[state.next(backendId) % candidates.length] : leastConnections(candidates, state, backendId);
}

function candidates(b: Backend, opts: PickOptions): Endpoint[] {
  const ok = (e: Endpoint) => !opts.exclude?.has(e.key) && (opts.usable ? opts.usable(e) : true);
  const active = b.endpoints.filter((e) => e.state === 'Active' && ok(e));
  return active.length > 0 ? active : b.endpoints.filter((e) => e.state === 'Draining' && ok(e));
}

function weighted<T extends { backend: Backend }>(list: readonly T[], random: () => number): T {
  if (list.length === 1) return list[0];
  const total = list.reduce((s, x) => s + x.backend.weight, 0);
  let r = random() * total;
  for (const x of list) {
    r -= x.backend.weight;
    if (r < 0) return x;
  }
  return list[list.length - 1];
}

// Ties start from a rotating position so equal endpoints share new connections instead of the first taking all.
function leastConnections(eps: readonly Endpoint[], state: BalancerState, id: string): Endpoint {
  const start = state.next(id) % eps.length;
  let best = eps[start];
  let bestN = state.active.get(best.key) ?? 0;
  for (let i = 1; i < eps.length && bestN > 0; i++) {
    const e = eps[(start + i) % eps.length];
    const n = state.active.get(e.key) ?? 0;
    if (n < bestN) {
      best = e;
      bestN = n;
    }
  }
  return best;
}
